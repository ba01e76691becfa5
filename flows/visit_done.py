"""The ``visit_done`` flow: the form staff fill in the Prefect UI after a visit."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from models.enums import Channel
from synergie.settings import load_settings
from tasks.outbox import send_prepared_messages
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
    """Close a visit that took place: stage « visitée », 2 h of staff time, the flow questionnaire sent."""
    settings = load_settings()
    closed = close_booked_visit(settings=settings, siret=params.siret, notes=params.notes)
    sent = send_prepared_messages(settings=settings, channel=Channel.EMAIL)
    return {**closed, "email_sent": sent.get("sent", 0)}
