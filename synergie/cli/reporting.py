"""The results commands: funnel."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from synergie.cli.common import (
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
