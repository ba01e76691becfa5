"""Callers: the volunteers who phone, their days and daily capacity."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from models.tables import (
    Caller,
)
from synergie.listing.rows import RowRejected, clean_email, clean_phone


class CallError(ValueError):
    """A call-related request staff made cannot be honoured; the message says why, in French."""


# --- callers -----------------------------------------------------------------------------


def add_caller(
    *,
    session: Session,
    name: str,
    phone: str | None,
    email: str | None,
    per_day: int,
    days: Sequence[int] = (1, 2, 3, 4, 5),
) -> Caller:
    """Create and return a caller, refusing bad values with a French message."""
    name = name.strip()
    if not name:
        raise CallError("le nom de l'appelant est vide")
    if not phone and not email:
        raise CallError("indiquez au moins un téléphone (--phone) ou un e-mail (--email)")
    if not 1 <= per_day <= 200:
        raise CallError("le nombre d'appels par jour doit être compris entre 1 et 200")
    chosen = sorted(set(days))
    if not chosen or any(day not in range(1, 8) for day in chosen):
        raise CallError(
            "jours invalides : donnez des numéros de 1 (lundi) à 7 (dimanche), ex. 1,2,3"
        )
    try:
        # E.164, as Twilio wants it: "06 39 98 10 01" is stored +33639981001.
        number = clean_phone(phone or "")
    except RowRejected as exc:
        raise CallError(f"{exc} : donnez un numéro comme 06 39 98 10 01 ou +33639981001") from exc
    try:
        address = clean_email(email or "")
    except RowRejected as exc:
        raise CallError(str(exc)) from exc
    caller = Caller(
        name=name,
        phone=number,
        email=address,
        calls_per_day=per_day,
        days_available=chosen,
    )
    session.add(caller)
    session.flush()
    return caller


def list_callers(*, session: Session) -> Sequence[Caller]:
    """Every caller, active ones first, by name."""
    return session.exec(select(Caller).order_by(col(Caller.active).desc(), col(Caller.name))).all()


def parse_days(value: str) -> list[int]:
    """ISO weekdays from ``"1,2,3"``; CallError in French on anything else."""
    try:
        days = [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise CallError(
            f"jours invalides « {value} » : des numéros de 1 (lundi) à 7 (dimanche), ex. 1,2,3,4,5"
        ) from None
    return days


# --- selection and assignment --------------------------------------------------------------
