"""The results commands: funnel and the programme's report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from synergie.cli.common import (
    cli_settings,
    console,
    db_session,
)

app = typer.Typer()


@app.command()
def funnel() -> None:
    """Affiche l'entonnoir des étapes, comparé au cas de référence (60 → 30 → 15)."""
    with db_session() as session:
        print_funnel(session)


def print_funnel(session: Any) -> None:
    from models import STAGE_LABELS_FR
    from synergie.reporting.funnel import exits, funnel, referrals

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
    brought = referrals(session=session)
    if brought:
        table = Table(title="Entreprises invitées par les participants")
        for column in ("Rencontre", "Entreprise invitée", "Invitée par"):
            table.add_column(column)
        for row in brought:
            table.add_row(*row)
        console.print(table)


@app.command("report")
def report_command(
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Fichier HTML à écrire (par défaut : var/reports/rapport-JJ.html)"
        ),
    ] = None,
) -> None:
    """Affiche le bilan (entonnoir, heures, synergies, km et CO2e évités) et écrit sa page HTML."""
    from models.db import make_engine, require_schema
    from synergie.reporting.programme import write_programme_report

    settings = cli_settings()
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
        written = write_programme_report(
            engine=engine, settings=settings, now=datetime.now(UTC), path=html
        )
    finally:
        engine.dispose()
    for section in written.report.sections:
        if section.rows:
            table = Table(title=section.title)
            for column in section.columns:
                table.add_column(column)
            for row in section.rows:
                table.add_row(*row)
            console.print(table)
        else:
            console.print(f"[bold]{section.title}[/]")
        for note in section.notes:
            console.print(f"  {note}")
    console.print(f"Page HTML : {written.path}")
