"""The ``visit_done`` flow: the form staff fill in the Prefect UI after a visit."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from synergie.settings import load_settings
from tasks.visits import close_booked_visit


class VisitDoneParams(BaseModel):
    """La visite à clore et ce qui y a été vu."""

    siret: str = Field(
        title="SIRET", pattern=r"^\d{14}$", description="SIRET de l'entreprise visitée"
    )
    notes: str = Field(
        title="Compte rendu", min_length=1, max_length=4000, description="Compte rendu de la visite"
    )


@flow(name="visit_done")
def visit_done(params: VisitDoneParams) -> dict[str, str | float]:
    """Close a visit that took place: stage « visitée » and 2 h of staff time."""
    return close_booked_visit(settings=load_settings(), siret=params.siret, notes=params.notes)
