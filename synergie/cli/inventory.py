"""The ``synergie inventory`` commands: enter, list, import and accept each site's material flows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from synergie.cli.common import CliError, actor, cli_settings, console, db_session

inventory_app = typer.Typer(
    help="Inventaire des flux de matières entrants et sortants de chaque site visité.",
    no_args_is_help=True,
)


@contextmanager
def _french_errors() -> Iterator[None]:
    """Turn the errors a person can cause into one CliError line."""
    from models.companies import CompanyNotFound
    from synergie.inventory.rows import FlowRejected
    from synergie.inventory.store import InventoryError

    try:
        yield
    except (FlowRejected, InventoryError, CompanyNotFound) as exc:
        raise CliError(str(exc)) from exc


def _company(session: object, siret: str) -> object:
    from models.companies import get_company_by_siret

    return get_company_by_siret(session=session, siret=siret.replace(" ", ""))  # type: ignore[arg-type]


@inventory_app.command("add")
def inventory_add(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
    direction: Annotated[str, typer.Option("--direction", help="entrant ou sortant")],
    material: Annotated[
        str, typer.Option("--material", help="La matière, dans les mots de l'entreprise")
    ],
    quantity: Annotated[str, typer.Option("--quantity", help="Quantité, ex. 2 ou 2,5")],
    unit: Annotated[str, typer.Option("--unit", help="t, kg, m³ (m3), L, pièces, palettes")],
    per: Annotated[str, typer.Option("--per", help="week, month, year (ou semaine, mois, an)")],
    category: Annotated[
        str | None,
        typer.Option(
            "--category", help="Catégorie (code de la liste ; par défaut d'après le code déchet)"
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", help="Code de la liste européenne des déchets, ex. 150101"),
    ] = None,
    outlet: Annotated[
        str | None,
        typer.Option(
            "--outlet",
            help="collecteur, enfouissement, incinération, recyclage, réemploi, fournisseur",
        ),
    ] = None,
    trips: Annotated[str | None, typer.Option("--trips", help="Trajets de camion par mois")] = None,
    km: Annotated[str | None, typer.Option("--km", help="Kilomètres par trajet")] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="Montant en euros, par période")
    ] = None,
    money: Annotated[str | None, typer.Option("--money", help="coût ou recette")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Remarque")] = None,
) -> None:
    """Note un flux d'une entreprise (saisi par l'équipe)."""
    from models.inventory import Direction, FlowOrigin, Outlet
    from synergie.inventory.rows import validate_flow
    from synergie.inventory.store import add_flows

    default_outlet = (
        Outlet.SUPPLIER if direction.strip().lower().startswith("entr") else Outlet.COLLECTOR
    )
    values = {
        "direction": direction, "description": material, "category": category or "",
        "waste_code": code or "", "quantity": quantity, "unit": unit, "frequency": per,
        "outlet": outlet or default_outlet.value, "trips_per_month": trips or "",
        "km_per_trip": km or "", "amount_eur": amount or "", "money_kind": money or "",
        "note": note or "",
    }  # fmt: skip
    with _french_errors(), db_session() as session:
        row = validate_flow(values)
        company = _company(session, siret)
        add_flows(session=session, company=company, rows=[row], origin=FlowOrigin.STAFF,  # type: ignore[arg-type]
                  actor=actor(), now=datetime.now(UTC))  # fmt: skip
        sens = "sortant de" if row.direction == Direction.OUTGOING else "entrant chez"
        console.print(
            f"Flux noté : {row.description}, {row.quantity:g} {row.unit.value} par "
            f"{row.frequency.value} ({row.monthly_quantity:.3g} {row.unit.value}/mois), {sens} "
            f"{company.name}."  # type: ignore[attr-defined]
        )


@inventory_app.command("list")
def inventory_list(
    siret: Annotated[
        str | None, typer.Argument(help="SIRET d'une entreprise (vide : toutes)")
    ] = None,
) -> None:
    """Liste les flux notés (d'une entreprise, ou de toutes)."""
    from synergie.inventory.codes import categories, format_waste_code
    from synergie.inventory.store import list_flows

    labels = categories()
    with _french_errors(), db_session() as session:
        company_id = _company(session, siret).id if siret else None  # type: ignore[attr-defined]
        listed = list_flows(session=session, company_id=company_id)
    table = Table(title="Flux de matières" + (f" – SIRET {siret}" if siret else ""))
    for column in ("Entreprise", "Sens", "Matière", "Catégorie", "Code déchet", "Quantité",
                   "Par mois", "Exutoire", "Camions", "Saisi par"):  # fmt: skip
        table.add_column(column)
    for item in listed:
        flow = item.flow
        code = format_waste_code(flow.waste_code, flow.hazardous) if flow.waste_code else "—"
        trucks = "—"
        if flow.trips_per_month:
            trucks = f"{flow.trips_per_month:g}/mois" + (
                f" × {flow.km_per_trip:g} km" if flow.km_per_trip else ""
            )
        table.add_row(
            item.company, flow.direction.value, flow.description,
            labels[flow.category].label if flow.category in labels else flow.category, code,
            f"{flow.quantity:g} {flow.unit.value}/{flow.frequency.value}",
            f"{flow.monthly_quantity:.3g} {flow.unit.value}", flow.outlet.value, trucks,
            {"staff": "équipe", "import": "import", "portal": "questionnaire"}[flow.origin.value],
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(listed)} flux.")


@inventory_app.command("import")
def inventory_import(
    file: Annotated[Path, typer.Argument(help="Fichier CSV, une ligne par flux")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Tout vérifier, ne rien écrire")
    ] = False,
) -> None:
    """Importe des flux depuis un CSV (colonnes dans le README) ; les lignes fautives sont rejetées."""
    from models.db import make_engine, require_schema
    from synergie.inventory.importing import import_flows
    from synergie.listing.reading import ListingFileError

    settings = cli_settings()
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
        report = import_flows(engine=engine, path=file, rejects_dir=settings.reports_dir,
                              actor=actor(), now=datetime.now(UTC), dry_run=dry_run)  # fmt: skip
    except ListingFileError as exc:
        raise CliError(str(exc)) from exc
    finally:
        engine.dispose()
    table = Table(
        title="Import des flux" + (" (essai à blanc, rien n'a été écrit)" if dry_run else "")
    )
    table.add_column("")
    table.add_column("Nombre", justify="right")
    table.add_row("Lignes lues", str(report.rows_read))
    table.add_row("Flux importés", str(report.imported))
    table.add_row("Entreprises", str(report.companies))
    table.add_row("Lignes rejetées", f"[red]{report.rejected}[/]" if report.rejected else "0")
    console.print(table)
    for rejection in report.rejections[:20]:
        console.print(f"  ligne {rejection.line} : {rejection.reason}")
    if report.rejects_path:
        console.print(f"Lignes rejetées et motifs : {report.rejects_path}")


@inventory_app.command("accept")
def inventory_accept(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
) -> None:
    """Valide l'inventaire des flux d'une entreprise visitée : étape « flux collectés »."""
    from synergie.inventory.store import accept_inventory

    with _french_errors(), db_session() as session:
        company = _company(session, siret)
        accept_inventory(session=session, company=company, actor=actor(), now=datetime.now(UTC))  # type: ignore[arg-type]
        console.print(f"Inventaire validé : {company.name} passe à l'étape « flux collectés ».")  # type: ignore[attr-defined]
