"""The listing commands: init, import, companies, stage."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from synergie.cli.common import (
    CliError,
    cli_settings,
    console,
    db_session,
    prefect_notice,
    progress_bar,
)

app = typer.Typer()


@app.command()
def init() -> None:
    """Crée ou met à jour la base de données (migrations Alembic)."""
    from models.db import upgrade_database

    settings = cli_settings()
    revision = upgrade_database(settings.db_url)
    console.print(f"Base de données prête (révision {revision}).")


@app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="Fichier CSV (format Synergie ou SIRENE StockEtablissement) ou classeur Excel .xlsx"
        ),
    ],
    commune: Annotated[
        list[str] | None,
        typer.Option(
            "--commune",
            help="Commune à garder (répétable) : code INSEE, nom, code postal ou « 21700 Nuits-Saint-Georges »",
        ),
    ] = None,
    legal_units: Annotated[
        Path | None,
        typer.Option(
            "--legal-units",
            help="Fichier SIRENE StockUniteLegale : raison sociale des établissements sans nom "
            "ni enseigne, et statut de diffusion des unités légales",
        ),
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
    from synergie.listing.reading import detect_layout

    cli_settings()
    detect_layout(path)  # an unreadable file fails here, before Prefect starts
    if legal_units is not None:
        from synergie.listing.reading import sniff_csv

        sniff_csv(legal_units)
    from synergie.listing.communes import commune_codes

    try:
        params = ImportListingParams(
            path=str(path.resolve()),
            legal_units=str(legal_units.resolve()) if legal_units else "",
            communes=commune_codes(commune or []),
            naf_prefixes=naf or [],
            min_staff_band=min_staff_band or "",
            include_closed=include_closed,
            dry_run=dry_run,
        )
    except ValidationError as exc:
        raise CliError(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from exc
    except ValueError as exc:  # a commune unknown or ambiguous
        raise CliError(str(exc)) from exc
    with prefect_notice(), progress_bar():
        counts = import_flow(params)
    print_import(counts, dry_run)


def print_import(counts: dict[str, Any], dry_run: bool) -> None:
    table = Table(title="Importation" + (" (essai à blanc, rien n'a été écrit)" if dry_run else ""))
    table.add_column("")
    table.add_column("Nombre", justify="right")
    table.add_row("Lignes lues", str(counts["rows_read"]))
    table.add_row("Hors filtres", str(counts["filtered_out"]))
    table.add_row("Nouvelles entreprises", str(counts["created"]))
    table.add_row("Déjà connues (mises à jour)", str(counts["updated"]))
    if counts.get("named_from_legal_units"):
        table.add_row("Nommées d'après leur unité légale", str(counts["named_from_legal_units"]))
    table.add_row(
        "Non diffusibles (SIRENE, jamais démarchées)", str(counts.get("not_diffusible", 0))
    )
    unplaced = counts.get("unplaced", 0)
    table.add_row(
        "Importées sans code commune (à compléter)", f"[yellow]{unplaced}[/]" if unplaced else "0"
    )
    table.add_row("Lignes rejetées", f"[red]{counts['rejected']}[/]" if counts["rejected"] else "0")
    console.print(table)
    if counts["rejected"] or counts.get("unplaced"):
        console.print(
            "Les lignes rejetées ou sans code commune, et leur motif, sont dans le dossier des "
            "rapports (var/reports)."
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
    with db_session() as session:
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
    with db_session() as session:
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
