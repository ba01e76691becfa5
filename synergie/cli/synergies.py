"""The ``synergie synergies`` commands: propose candidates, record synergies, move them along, list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from synergie import french
from synergie.cli.common import CliError, actor, cli_settings, console, db_session

synergies_app = typer.Typer(
    help="Synergies : candidates, suivi idée → étude → conclue → en service → arrêtée.",
    no_args_is_help=True,
)
AUTHORITY = "collectivite"


@contextmanager
def _french_errors() -> Iterator[None]:
    from synergie.reporting.impact import UnknownVehicle
    from synergie.synergies.lifecycle import SynergyError
    from synergie.synergies.sources import FlowFileError

    try:
        yield
    except (SynergyError, FlowFileError, UnknownVehicle) as exc:
        raise CliError(str(exc)) from exc


@synergies_app.command("match")
def match(
    max_km: Annotated[
        float, typer.Option("--max-km", min=1, max=1000, help="Distance maximale par la route")
    ] = 50.0,
    flows: Annotated[
        Path | None,
        typer.Option(
            "--flows",
            help="Flux en plus de l'inventaire (CSV : siret;direction;code;category;words;"
            "tonnes_per_month;outlet;accepts_hazardous), nommés csv:N",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Candidates affichées")] = 30,
) -> None:
    """Propose des synergies sur l'inventaire des flux : un flux sortant pour un flux entrant, ou une collecte commune."""
    from synergie.synergies.matching import MatchSettings, candidates
    from synergie.synergies.sources import inventory_territory, merge_tables, read_flow_file

    settings = cli_settings()
    with _french_errors(), db_session() as session:
        table = inventory_territory(session=session)
        if flows is not None:
            table = merge_tables(table, read_flow_file(flows, session=session))
    for problem in table.problems:
        console.print(f"[yellow]{problem}[/]")
    if not table.flows:
        console.print(
            "Aucun flux dans l'inventaire : saisissez-les (synergie inventory add ou import, "
            "ou le questionnaire après la visite), ou donnez --flows FICHIER.csv."
        )
        return
    cfg = MatchSettings(max_km=max_km, road_factor=settings.road_factor)
    found = candidates(table.sites, table.flows, cfg)
    console.print(
        f"{len(found)} candidate(s) sur {len(table.flows)} flux de {len(table.sites)} sites "
        f"(jusqu'à {french.number(max_km)} km par la route, "
        f"facteur route {french.number(settings.road_factor, digits=2)})"
    )
    out = Table(title="Synergies candidates", show_lines=True)
    for column in ("Score", "Type", "Entreprises", "Flux", "Pourquoi"):
        out.add_column(column, justify="right" if column == "Score" else "left")
    for candidate in found[:limit]:
        out.add_row(
            french.number(candidate.score), candidate.kind.value, " → ".join(candidate.companies)
            if candidate.kind.value == "substitution" else " + ".join(candidate.companies),
            ", ".join(str(i) for i in candidate.flow_ids), "\n".join(candidate.reasons),
        )  # fmt: skip
    console.print(out)
    console.print(
        "[dim]Les numéros de flux se donnent à « synergie synergies add --flow N » ; "
        "trajets et km sont alors repris de leurs exutoires actuels.[/]"
    )


def _party(session: Any, who: str, role: str) -> Any:
    from models.companies import CompanyNotFound, get_company_by_siret
    from synergie.synergies.lifecycle import PartySpec

    if who.strip().casefold() in (AUTHORITY, "collectivité"):
        return PartySpec(None, role)
    try:
        company = get_company_by_siret(session=session, siret=who.replace(" ", ""))
    except CompanyNotFound as exc:
        raise CliError(f"{exc} (ou « {AUTHORITY} » pour la collectivité)") from exc
    return PartySpec(company.id, role)


@synergies_app.command("add")
def add(
    giver: Annotated[str, typer.Option("--from", help="SIRET de qui donne, ou « collectivite »")],
    taker: Annotated[str, typer.Option("--to", help="SIRET de qui reçoit, ou « collectivite »")],
    title: Annotated[str, typer.Option("--title", help="Intitulé, ex. « Chutes de carton »")] = "",
    flow: Annotated[
        list[int] | None, typer.Option("--flow", help="Identifiant d'un flux lié (répétable)")
    ] = None,
    trips: Annotated[
        float | None,
        typer.Option(
            "--trips", min=0, help="Trajets de camion supprimés par mois (défaut : ceux des flux)"
        ),
    ] = None,
    km: Annotated[
        float | None,
        typer.Option("--km", min=0, help="Kilomètres par trajet supprimé (défaut : ceux des flux)"),
    ] = None,
    tonnes: Annotated[
        float | None,
        typer.Option(
            "--tonnes", min=0, help="Tonnes réutilisées par an (défaut : celles des flux)"
        ),
    ] = None,
    vehicle: Annotated[
        str,
        typer.Option("--vehicle", help="Véhicule (clé de synergie/reporting/factors.toml)"),
    ] = "articulated-40t-long-distance",
) -> None:
    """Enregistre une synergie au statut « idée » entre deux entreprises (ou avec la collectivité)."""
    from synergie.reporting.impact import factor_for
    from synergie.synergies.lifecycle import create_synergy

    with _french_errors(), db_session() as session:
        factor_for(vehicle)
        parties = [_party(session, giver, "giver"), _party(session, taker, "taker")]
        synergy = create_synergy(
            session=session, title=title or "Synergie", parties=parties, flow_ids=flow or [],
            trips_per_month=trips, km_per_trip=km, tonnes_per_year=tonnes, vehicle=vehicle,
            actor=actor(), now=datetime.now(UTC),
        )  # fmt: skip
        console.print(
            f"Synergie n° {synergy.id} enregistrée (idée) : "
            f"{french.number(synergy.trips_per_month)} trajet(s)/mois de "
            f"{french.number(synergy.km_per_trip)} km, "
            f"{french.number(synergy.tonnes_per_year)} t/an"
            + (
                " (repris des flux liés ; modifiables)"
                if flow and None in (trips, km, tonnes)
                else ""
            )
            + "."
        )


@synergies_app.command("move")
def move(
    synergy_id: Annotated[int, typer.Argument(help="Numéro de la synergie")],
    status: Annotated[str, typer.Argument(help="idea, study, agreed, running ou stopped")],
    why: Annotated[str, typer.Option("--why", help="Pourquoi (gardé dans l'historique)")],
) -> None:
    """Fait avancer une synergie (idée → étude → conclue → en service) ou l'arrête."""
    from models.enums import SYNERGY_STATUS_LABELS_FR, SynergyStatus
    from synergie.synergies.lifecycle import move_synergy

    try:
        target = SynergyStatus(status.strip().casefold())
    except ValueError as exc:
        raise CliError(
            f"statut « {status} » inconnu ; possibles : {', '.join(s.value for s in SynergyStatus)}"
        ) from exc
    with _french_errors(), db_session() as session:
        move_synergy(
            session=session, synergy_id=synergy_id, target=target, why=why, actor=actor(),
            now=datetime.now(UTC),
        )  # fmt: skip
    console.print(f"Synergie n° {synergy_id} : {SYNERGY_STATUS_LABELS_FR[target]}.")


@synergies_app.command("list")
def list_command() -> None:
    """Liste les synergies, leur statut, leurs trajets et l'impact de celles conclues ou en service."""
    from models.enums import SYNERGY_STATUS_LABELS_FR
    from synergie.reporting.impact import COUNTED, synergy_impact
    from synergie.synergies.lifecycle import list_synergies

    with _french_errors(), db_session() as session:
        rows = list_synergies(session=session)
        out = Table(title="Synergies")
        for column in ("N°", "Intitulé", "Parties", "Statut", "Trajets/mois", "km/trajet",
                       "km évités/an", "tCO2e évitées/an"):  # fmt: skip
            out.add_column(column)
        for row in rows:
            s = row.synergy
            counted = s.status in COUNTED
            figures = synergy_impact(s)
            out.add_row(
                str(s.id), s.title, " ↔ ".join(row.parties), SYNERGY_STATUS_LABELS_FR[s.status],
                french.number(s.trips_per_month), french.number(s.km_per_trip),
                french.number(figures.km_per_year, digits=0) if counted else "—",
                french.number(figures.kg_co2e_per_year / 1000) if counted else "—",
            )  # fmt: skip
    console.print(out)
    console.print("[dim]Seules les synergies conclues ou en service comptent dans l'impact.[/]")
