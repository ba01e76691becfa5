"""Opt-outs as database verbs: record them idempotently, ask whether a contact may be reached."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.companies import StageConflict, move_company
from models.enums import Channel, Stage
from models.tables import Company, Contact, OptOut, StageChange

__all__ = [
    "CompanyOptOut",
    "is_opted_out",
    "opt_out",
    "opt_out_company",
    "opted_out_contact_ids",
]

logger = logging.getLogger(__name__)

_OPT_OUT = OptOut.__table__  # type: ignore[attr-defined]
# A stage move that loses a race is read again and retried; more than this means something is wrong.
_STAGE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class CompanyOptOut:
    """What a "never contact me again" request changed: new channel opt-outs, and the stage move if any."""

    channels: list[Channel] = field(default_factory=list)
    stage_change: StageChange | None = None

    @property
    def changed(self) -> bool:
        return bool(self.channels) or self.stage_change is not None


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, object]]) -> list[Channel]:
    """Insert opt-out rows, skipping those already there; return the channels actually inserted."""
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"opt-outs need SQLite or PostgreSQL, not {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING: a concurrent request inserting the same row makes ours a no-op
    # instead of an IntegrityError; RETURNING reports only the rows we actually wrote.
    statement = (
        insert(_OPT_OUT)
        .on_conflict_do_nothing(index_elements=["contact_id", "channel"])
        .returning(_OPT_OUT.c.channel)
    )
    inserted: list[Channel] = []
    for row in rows:  # one statement per row: RETURNING with executemany is not portable
        result = session.execute(statement.values(**row))
        inserted.extend(Channel(value) for value in result.scalars())
    return inserted


def opt_out(
    *,
    session: Session,
    contact: Contact,
    channels: Iterable[Channel],
    source: str,
    now: datetime,
) -> list[Channel]:
    """Record that ``contact`` refuses each of ``channels``; return the channels not refused before.

    Idempotent: a channel already refused keeps its first date and source, and two
    requests racing on the same contact both succeed.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    wanted = list(dict.fromkeys(Channel(channel) for channel in channels))
    rows: list[dict[str, object]] = [
        {"contact_id": contact.id, "channel": channel, "at": now, "source": source}
        for channel in wanted
    ]
    inserted = _insert_ignoring_duplicates(session, rows)
    if inserted:
        logger.info(
            "opt-out recorded: contact %s, channels %s, source %s",
            contact.public_id, ",".join(inserted), source,
        )  # fmt: skip
    return inserted


def opt_out_company(
    *,
    session: Session,
    contact: Contact,
    source: str,
    now: datetime,
    actor: str = "portal",
) -> CompanyOptOut:
    """Refuse every channel for ``contact`` and move its company to ``opted_out``; return what changed.

    Every stage may move to ``opted_out`` (DESIGN.md); a company already there is left as it is.
    """
    channels = opt_out(session=session, contact=contact, channels=Channel, source=source, now=now)
    company = session.get(Company, contact.company_id)
    if company is None:  # the foreign key makes this impossible short of a broken database
        raise LookupError(f"contact {contact.public_id} has no company")
    why = f"le contact {contact.public_id} demande à ne plus être contacté ({source})"
    for _ in range(_STAGE_ATTEMPTS):
        current = Stage(company.stage)
        if current == Stage.OPTED_OUT:
            return CompanyOptOut(channels=channels)
        try:
            change = move_company(
                session=session, company=company, target=Stage.OPTED_OUT, why=why, actor=actor,
                now=now,
            )  # fmt: skip
        except StageConflict:
            # Another writer moved it meanwhile (perhaps the same person clicking twice):
            # read the stage again and decide afresh.
            session.refresh(company)
            continue
        return CompanyOptOut(channels=channels, stage_change=change)
    raise StageConflict(f"l'étape de {company.name} change sans cesse ; réessayez")


def is_opted_out(*, session: Session, contact_id: int, channel: Channel) -> bool:
    """Whether ``contact_id`` may not be reached on ``channel``: refused it, or its company opted out."""
    return contact_id in opted_out_contact_ids(
        session=session, contact_ids=[contact_id], channel=channel
    )


def opted_out_contact_ids(
    *, session: Session, contact_ids: Iterable[int], channel: Channel
) -> set[int]:
    """Return those of ``contact_ids`` that may not be reached on ``channel`` (one query per batch)."""
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return set()
    channel = Channel(channel)
    refused = sa.exists().where(
        col(OptOut.contact_id) == col(Contact.id), col(OptOut.channel) == channel
    )
    # A company at opted_out means no message of any kind to any of its people (DESIGN.md).
    company_out = sa.exists().where(
        col(Company.id) == col(Contact.company_id), col(Company.stage) == Stage.OPTED_OUT
    )
    query = select(Contact.id).where(col(Contact.id).in_(ids), sa.or_(refused, company_out))
    return {contact_id for contact_id in session.exec(query) if contact_id is not None}
