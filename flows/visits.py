"""The ``visits`` flow: book interested companies (or one, at a chosen slot) and send the invitations."""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from pydantic import BaseModel, Field, field_validator

from models.enums import Channel
from synergie.settings import load_settings
from tasks.outbox import send_prepared_messages
from tasks.visits import book_visits


class VisitsParams(BaseModel):
    """Les visites à réserver. Par défaut, un essai à blanc qui montre ce qui serait réservé."""

    company_siret: str = Field(
        title="SIRET de l'entreprise",
        default="",
        description="SIRET d'une entreprise (vide : toutes les entreprises intéressées)",
    )
    slot: datetime | None = Field(
        title="Créneau choisi",
        default=None,
        description="Début de la visite choisie, avec fuseau (vide : le plus tôt)",
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : montrer ce qui serait réservé, ne rien écrire ni envoyer",
    )

    @field_validator("company_siret", mode="before")
    @classmethod
    def _siret(cls, value: str | None) -> str:
        if value is None or not value.strip():
            return ""
        digits = value.replace(" ", "")
        if not (digits.isdigit() and len(digits) == 14):
            raise ValueError(f"SIRET invalide « {value} » : 14 chiffres attendus")
        return digits

    @field_validator("slot")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("donnez le créneau avec son fuseau, ex. 2026-11-12T10:00+01:00")
        return value


@flow(name="visits")
def visits(params: VisitsParams = VisitsParams()) -> dict[str, int]:  # noqa: B008 (the form's default)
    """Book visits, then send the invitations (and any other prepared e-mail) waiting in the outbox."""
    if params.slot is not None and not params.company_siret:
        raise ValueError("un créneau choisi demande une entreprise (company_siret)")
    settings = load_settings()
    booked = book_visits(
        settings=settings, company_siret=params.company_siret or None, slot=params.slot,
        dry_run=params.dry_run,
    )  # fmt: skip
    if params.dry_run:
        return {"would_book": len(booked)}
    sent = send_prepared_messages(settings=settings, channel=Channel.EMAIL)
    return {"booked": len(booked), **{f"email_{k}": v for k, v in sent.items()}}


if __name__ == "__main__":
    visits()
