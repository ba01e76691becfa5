"""The ``synergie`` command line, for staff: French messages, rich tables and progress bars."""

from __future__ import annotations

import getpass
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from synergie.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Synergie : le parcours des entreprises d'une démarche d'écologie industrielle et territoriale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


class CliError(Exception):
    """An error to show staff as one line, without a traceback."""


def main() -> None:
    """Entry point of the console script: known errors become one clear line and exit code 1."""
    from models.companies import CompanyNotFound, StageConflict
    from models.db import DatabaseError
    from models.stages import StageTransitionError
    from synergie.listing import ListingFileError

    known = (CliError, SettingsError, DatabaseError, ListingFileError, StageTransitionError,
             CompanyNotFound, StageConflict)  # fmt: skip
    try:
        app()
    except known as exc:
        err.print(f"[bold red]Erreur :[/] {exc}")
        sys.exit(1)


def _settings() -> Settings:
    settings = load_settings()
    settings.ensure_dirs()
    return settings


@contextmanager
def _prefect_notice() -> Iterator[None]:
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            "[dim]Aucun serveur Prefect configuré (PREFECT_API_URL) : démarrage d'une API locale "
            "temporaire, comptez 15 à 20 secondes…[/]"
        )
    yield


@contextmanager
def _progress_bar() -> Iterator[None]:
    from synergie.progress import progress_to

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def sink(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what.capitalize(), total=total)
            progress.update(tasks[what], completed=done, total=total)

        with progress_to(sink):
            yield


@app.command()
def init() -> None:
    """Crée ou met à jour la base de données (migrations Alembic)."""
    from models.db import upgrade_database

    settings = _settings()
    revision = upgrade_database(settings.db_url)
    console.print(f"Base de données prête (révision {revision}).")


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="Fichier CSV : format Synergie ou SIRENE StockEtablissement")
    ],
    commune: Annotated[
        list[str] | None, typer.Option("--commune", help="Code commune INSEE à garder (répétable)")
    ] = None,
    naf: Annotated[
        list[str] | None, typer.Option("--naf", help="Début de code NAF à garder (répétable)")
    ] = None,
    min_staff_band: Annotated[
        str | None, typer.Option(help="Tranche d'effectifs INSEE minimale, ex. 11")
    ] = None,
    include_closed: Annotated[bool, typer.Option(help="Garder les établissements fermés")] = False,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier sans rien écrire")] = False,
) -> None:
    """Importe une liste d'entreprises (flow import_listing)."""
    from pydantic import ValidationError

    from flows.import_listing import ImportListingParams
    from flows.import_listing import import_listing as import_flow
    from synergie.listing import detect_layout

    _settings()
    detect_layout(path)  # an unreadable file fails here, before Prefect starts
    try:
        params = ImportListingParams(
            path=str(path.resolve()),
            communes=commune or [],
            naf_prefixes=naf or [],
            min_staff_band=min_staff_band,
            include_closed=include_closed,
            dry_run=dry_run,
        )
    except ValidationError as exc:
        raise CliError(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from exc
    with _prefect_notice(), _progress_bar():
        counts = import_flow(params)
    _print_import(counts, dry_run)


def _print_import(counts: dict[str, Any], dry_run: bool) -> None:
    table = Table(title="Importation" + (" (essai à blanc, rien n'a été écrit)" if dry_run else ""))
    table.add_column("")
    table.add_column("Nombre", justify="right")
    table.add_row("Lignes lues", str(counts["rows_read"]))
    table.add_row("Hors filtres", str(counts["filtered_out"]))
    table.add_row("Nouvelles entreprises", str(counts["created"]))
    table.add_row("Déjà connues (mises à jour)", str(counts["updated"]))
    table.add_row("Lignes rejetées", f"[red]{counts['rejected']}[/]" if counts["rejected"] else "0")
    console.print(table)
    if counts["rejected"]:
        console.print(
            "Les lignes rejetées et leur motif sont dans le dossier des rapports (var/reports)."
        )


@app.command()
def companies(
    stage: Annotated[str | None, typer.Option(help="Étape, ex. listed, contacted")] = None,
    commune: Annotated[str | None, typer.Option(help="Code commune INSEE")] = None,
    naf: Annotated[str | None, typer.Option(help="Début de code NAF")] = None,
    search: Annotated[str | None, typer.Option(help="Texte cherché dans le nom")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Liste les entreprises, avec filtres."""
    from models import STAGE_LABELS_FR, Stage
    from models.companies import list_companies

    chosen = _parse_stage(stage) if stage else None
    with _session() as session:
        rows = list_companies(
            session=session,
            stage=chosen,
            commune_code=commune,
            naf_prefix=naf,
            search=search,
            limit=limit,
        )
        table = Table(title=f"Entreprises ({len(rows)})")
        for column in ("SIRET", "Nom", "NAF", "Commune", "Étape"):
            table.add_column(column)
        for company in rows:
            table.add_row(
                company.siret or "—",
                company.name,
                company.naf_code or "—",
                company.commune or company.commune_code or "—",
                STAGE_LABELS_FR[Stage(company.stage)],
            )
    console.print(table)


def _parse_stage(value: str) -> Any:
    from models import Stage

    try:
        return Stage(value)
    except ValueError:
        raise CliError(
            f"étape inconnue « {value} » ; étapes : {', '.join(s.value for s in Stage)}"
        ) from None


@contextmanager
def _session() -> Iterator[Any]:
    from models.db import make_engine, require_schema, session_scope

    engine = make_engine(_settings().db_url)
    try:
        require_schema(engine)
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


@app.command()
def stage(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
    target: Annotated[str, typer.Argument(metavar="STAGE", help="Nouvelle étape")],
    why: Annotated[str, typer.Option("--why", help="Raison, gardée dans l'historique")],
    by: Annotated[
        str | None, typer.Option(help="Votre nom (par défaut : l'utilisateur système)")
    ] = None,
) -> None:
    """Change l'étape d'une entreprise à la main, selon les règles du parcours."""
    from models import STAGE_LABELS_FR
    from models.companies import get_company_by_siret, move_company

    chosen = _parse_stage(target)
    if not why.strip():
        raise CliError("indiquez la raison du changement avec --why")
    with _session() as session:
        company = get_company_by_siret(session=session, siret=siret.replace(" ", ""))
        change = move_company(
            session=session,
            company=company,
            target=chosen,
            why=why.strip(),
            actor=f"staff:{by or getpass.getuser()}",
            now=datetime.now(UTC),
        )
        console.print(
            f"{company.name} : {STAGE_LABELS_FR[change.from_stage]} → [bold]{STAGE_LABELS_FR[change.to_stage]}[/]"
        )


@app.command()
def funnel() -> None:
    """Affiche l'entonnoir des étapes, comparé au cas de référence (60 → 30 → 15)."""
    with _session() as session:
        _print_funnel(session)


def _print_funnel(session: Any) -> None:
    from models import STAGE_LABELS_FR
    from synergie.reporting import exits, funnel

    table = Table(title="Entonnoir des entreprises")
    table.add_column("Étape")
    table.add_column("Y sont", justify="right")
    table.add_column("L'ont atteinte", justify="right")
    table.add_column("Référence", justify="right")
    for step in funnel(session=session):
        table.add_row(
            step.label, str(step.now), str(step.reached), str(step.seed) if step.seed else ""
        )
    console.print(table)
    left = {STAGE_LABELS_FR[s]: n for s, n in exits(session=session).items() if n}
    if left:
        console.print("Sorties : " + ", ".join(f"{label} {n}" for label, n in left.items()))


@app.command()
def demo() -> None:
    """Démonstration sur le territoire fictif de Nuits-Saint-Georges, dans une base neuve."""
    from flows.import_listing import ImportListingParams
    from flows.import_listing import import_listing as import_flow
    from models.db import upgrade_database
    from synergie import SAMPLE_LISTING

    base = _settings()
    demo_dir = (base.data_dir / "demo").resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    # Flows read their settings from the environment, as a worker would.
    os.environ["SYNERGIE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("SYNERGIE_DATABASE_URL", None)
    settings = _settings()
    console.rule("[bold]Synergie — démonstration")
    console.print(f"Données de la démonstration : {demo_dir}")
    upgrade_database(settings.db_url)
    console.print("1. Base SQLite neuve créée.")
    console.print(
        f"2. Importation de la liste fictive ({SAMPLE_LISTING.name}) par le flow import_listing."
    )
    with _prefect_notice(), _progress_bar():
        counts = import_flow(ImportListingParams(path=str(SAMPLE_LISTING), dry_run=False))
    _print_import(counts, dry_run=False)
    with _session() as session:
        _print_funnel(session)


if __name__ == "__main__":
    main()
