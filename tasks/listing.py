"""Tasks of the listing import: import the file, publish what happened."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.db import require_schema
from synergie.listing.reading import ImportReport, ListingFilter
from synergie.listing.uploads import import_recorded
from synergie.settings import Settings
from tasks.runtime import ProgressArtifact, engine_for


@task(name="import-listing-file", cache_policy=NO_CACHE)
def import_listing_file(
    *,
    settings: Settings,
    path: str,
    listing_filter: ListingFilter,
    dry_run: bool,
    legal_units: str | None = None,
) -> ImportReport:
    """Stream the file into the database and return the import report.

    A file uploaded on the staff portal gets its outcome recorded on its upload row, for the page.
    """
    logger = get_run_logger()
    engine = engine_for(settings.db_url)
    require_schema(engine)
    progress = ProgressArtifact(
        "import", key="import-listing-progress", description=f"Importation de {Path(path).name}"
    )
    report = import_recorded(
        engine=engine,
        path=Path(path),
        listing_filter=listing_filter,
        rejects_dir=settings.reports_dir,
        dry_run=dry_run,
        on_progress=progress.update,
        legal_units=Path(legal_units) if legal_units else None,
    )
    logger.info(
        "read %d rows (%s, %s): %d new, %d updated, %d rejected, %d filtered out, "
        "%d not diffusible, %d without a commune code in %.1fs",
        report.rows_read, report.kind, report.encoding, report.created, report.updated,
        report.rejected, report.filtered_out, report.not_diffusible, report.unplaced, report.seconds,
    )  # fmt: skip
    return report


@task(name="publish-import-report", cache_policy=NO_CACHE)
def publish_import_report(report: ImportReport) -> None:
    """Publish the import summary and its rejected rows as Prefect artifacts."""
    verb = "seraient créées" if report.dry_run else "créées"
    summary = (
        f"# Importation de `{Path(report.path).name}`{' (essai à blanc)' if report.dry_run else ''}\n\n"
        f"| | |\n|---|---|\n"
        f"| Format | {report.kind} ({report.encoding}, séparateur « {report.delimiter} ») |\n"
        f"| Lignes lues | {report.rows_read} |\n"
        f"| Hors filtres | {report.filtered_out} |\n"
        f"| Entreprises {verb} | {report.created} |\n"
        f"| Entreprises déjà connues, mises à jour | {report.updated} |\n"
        f"| Contacts ajoutés | {report.contacts_created} |\n"
        f"| Non diffusibles (SIRENE, jamais démarchées) | {report.not_diffusible} |\n"
        f"| Nommées d'après leur unité légale | {report.named_from_legal_units} |\n"
        f"| Importées sans code commune (à compléter) | {report.unplaced} |\n"
        f"| Lignes rejetées | {report.rejected} |\n"
        f"| Fichier des rejets | {report.rejects_path or '—'} |\n"
    )
    create_markdown_artifact(
        markdown=summary, key="import-listing", description="Bilan de l'importation"
    )
    create_table_artifact(
        table=[
            {"ligne": r.line, "motif": r.reason, "contenu": r.raw[:200]} for r in report.rejections
        ]
        or [{"ligne": "", "motif": "aucune ligne rejetée", "contenu": ""}],
        key="import-listing-rejects",
        description=f"Lignes rejetées ({report.rejected}, les {len(report.rejections)} premières)",
    )
