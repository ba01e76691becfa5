"""Opt-outs as database verbs: the suppression list, what writes it, and what every send checks.

An opt-out is kept twice: on the contact row it came through (``opt_out``, what the portal
shows) and, above all, on the suppression list keyed by the normalised e-mail address or the
E.164 number (``suppression``), which every selection and every outbox claim checks whatever
company or contact row the same address hangs on now or later. ``suppress`` is the one
function that writes the list: the portal, one-click, the mailbox's ``mailto:`` reader, the
carrier's STOP (Twilio 21610) and staff all go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.companies import StageConflict, move_company
from models.enums import Channel, Stage, Suppressed, SuppressionSource
from models.tables import Company, Contact, OptOut, StageChange, Suppression
from synergie.listing.rows import RowRejected, clean_email, clean_phone

__all__ = [
    "CompanyOptOut",
    "NotAnAddress",
    "SuppressionNotFound",
    "is_opted_out",
    "is_suppressed",
    "lift_suppression",
    "list_suppressions",
    "normalise_address",
    "opt_out",
    "opt_out_company",
    "opted_out_contact_ids",
    "refused",
    "suppress",
    "suppressed",
    "suppressed_addresses",
    "suppression_of",
]

logger = logging.getLogger(__name__)

_OPT_OUT = OptOut.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]
AddressKind = Literal["email", "phone"]
# Which suppression channels an address of each kind may carry.
_FITS: dict[AddressKind, tuple[Suppressed, ...]] = {
    "email": (Suppressed.EMAIL, Suppressed.ALL),
    "phone": (Suppressed.SMS, Suppressed.PHONE, Suppressed.ALL),
}
_REASONS: dict[SuppressionSource, str] = {
    SuppressionSource.PORTAL: "désinscription demandée sur la page du lien reçu",
    SuppressionSource.ONE_CLICK: "désinscription en un clic depuis la messagerie",
    SuppressionSource.MAILTO: "désinscription demandée par e-mail",
    SuppressionSource.SMS_STOP: "STOP répondu à un SMS (signalé par l'opérateur, erreur 21610)",
    SuppressionSource.STAFF: "désinscription enregistrée par l'équipe",
    SuppressionSource.MIGRATION: "désinscription enregistrée avant la liste d'opposition",
}


class NotAnAddress(ValueError):
    """Neither an e-mail address nor a phone number; the message says so in French."""


class SuppressionNotFound(LookupError):
    """No active suppression answers to the address (and channel) given."""


def normalise_address(value: str) -> tuple[str, AddressKind]:
    """Return the normalised e-mail address or E.164 number in ``value``, and which it is."""
    text = value.strip()
    try:
        if "@" in text:
            email = clean_email(text)
            if email:
                return email, "email"
        else:
            phone = clean_phone(text)
            if phone:
                return phone, "phone"
    except RowRejected as exc:
        raise NotAnAddress(f"{exc} : donnez une adresse e-mail ou un numéro de téléphone") from exc
    raise NotAnAddress("adresse vide : donnez une adresse e-mail ou un numéro de téléphone")


def suppression_source(source: str) -> SuppressionSource:
    """The suppression source for an opt-out source string (``carrier-stop`` is an SMS STOP)."""
    if source == "carrier-stop":
        return SuppressionSource.SMS_STOP
    try:
        return SuppressionSource(source)
    except ValueError:
        return SuppressionSource.STAFF


def suppress(
    connection: sa.Connection,
    *,
    address: str,
    channel: Suppressed | Channel | str,
    source: SuppressionSource | str,
    now: datetime,
    actor: str,
    reason: str | None = None,
    contact_id: int | None = None,
) -> bool:
    """Put ``address`` on the suppression list for ``channel``; return False when it was already there.

    ``address`` is an e-mail address or a phone number in any usual spelling (NotAnAddress
    otherwise); it is stored normalised. Idempotent and safe under concurrent requests: a
    channel already suppressed (or ``all``) keeps its first record.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    normalised, kind = normalise_address(address)
    wanted = Suppressed(str(channel))
    if wanted not in _FITS[kind]:
        what = "une adresse e-mail" if kind == "email" else "un numéro de téléphone"
        fits = ", ".join(c.value for c in _FITS[kind])
        raise NotAnAddress(
            f"le canal « {wanted.value} » ne s'applique pas à {what} (canaux : {fits})"
        )
    if is_suppressed(connection, address=normalised, channel=wanted):
        return False
    origin = SuppressionSource(suppression_source(str(source)))
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the suppression list needs SQLite or PostgreSQL, not {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(SUPPRESSION)
        .values(
            address=normalised,
            channel=wanted.value,
            source=origin.value,
            at=now,
            actor=actor[:200],
            reason=(reason or _REASONS[origin])[:1000],
            contact_id=contact_id,
        )  # fmt: skip
        # A concurrent request inserting the same row makes ours a no-op, not an IntegrityError.
        .on_conflict_do_nothing(
            index_elements=["address", "channel"], index_where=SUPPRESSION.c.lifted_at.is_(None)
        )
        .returning(SUPPRESSION.c.id)
    )
    added = connection.execute(statement).first() is not None
    if added:
        logger.info("suppressed %s address on %s (source %s, by %s)", kind, wanted, origin, actor)
    return added


def suppressed(address: Any, channel: Channel | Suppressed | None) -> sa.ColumnElement[bool]:
    """SQL: an active suppression forbids ``address`` (a column or value) on ``channel``; None: on any."""
    clauses = [SUPPRESSION.c.address == address, SUPPRESSION.c.lifted_at.is_(None)]
    if channel is not None and Suppressed(str(channel)) != Suppressed.ALL:
        clauses.append(SUPPRESSION.c.channel.in_([str(channel), Suppressed.ALL.value]))
    return sa.exists().where(*clauses)


def refused(*, contact_id: Any, address: Any, channel: Channel) -> sa.ColumnElement[bool]:
    """SQL: the contact refused ``channel`` on its own row, or its address is suppressed for it.

    The one test every selection and claim applies: ``address`` is the e-mail address
    (lower-cased) for e-mail, the E.164 number for SMS and calls.
    """
    channel = Channel(channel)
    own = sa.exists().where(
        _OPT_OUT.c.contact_id == contact_id, _OPT_OUT.c.channel == channel.value
    )
    return sa.or_(own, suppressed(address, channel))


def contact_address(channel: Channel) -> Any:
    """The contact column a channel reaches, as ``refused`` wants it."""
    return (
        sa.func.lower(col(Contact.email))
        if Channel(channel) == Channel.EMAIL
        else col(Contact.phone)
    )


def is_suppressed(
    connection: sa.Connection, *, address: str, channel: Channel | Suppressed | None
) -> bool:
    """Whether the (normalised) ``address`` is suppressed for ``channel`` (None: for any)."""
    return bool(connection.execute(sa.select(suppressed(address, channel))).scalar())


def suppressed_addresses(
    connection: sa.Connection, addresses: Iterable[str], channel: Channel | None
) -> set[str]:
    """Those of the (normalised) ``addresses`` suppressed for ``channel`` (None: for any), in few queries."""
    wanted = list(dict.fromkeys(a for a in addresses if a))
    found: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = sa.select(SUPPRESSION.c.address).where(
            SUPPRESSION.c.address.in_(chunk), SUPPRESSION.c.lifted_at.is_(None)
        )
        if channel is not None:
            query = query.where(SUPPRESSION.c.channel.in_([str(channel), Suppressed.ALL.value]))
        found.update(connection.execute(query).scalars())
    return found


def suppression_of(
    connection: sa.Connection, *, address: str | None, channel: Channel
) -> Suppression | None:
    """The active suppression of ``address`` for ``channel`` (or ``all``), oldest first, if any."""
    if not address:
        return None
    try:
        normalised, _ = normalise_address(address)
    except NotAnAddress:
        return None
    row = connection.execute(
        sa.select(SUPPRESSION)
        .where(
            SUPPRESSION.c.address == normalised,
            SUPPRESSION.c.lifted_at.is_(None),
            SUPPRESSION.c.channel.in_([str(channel), Suppressed.ALL.value]),
        )
        .order_by(SUPPRESSION.c.at)
        .limit(1)
    ).first()
    return Suppression.model_validate(dict(row._mapping)) if row is not None else None


def list_suppressions(
    connection: sa.Connection, *, include_lifted: bool = False, search: str | None = None
) -> list[Suppression]:
    """Every suppression, newest first; lifted ones only when asked."""
    query = sa.select(SUPPRESSION).order_by(SUPPRESSION.c.at.desc(), SUPPRESSION.c.id.desc())
    if not include_lifted:
        query = query.where(SUPPRESSION.c.lifted_at.is_(None))
    if search:
        query = query.where(SUPPRESSION.c.address.contains(search.strip().lower()))
    return [Suppression.model_validate(dict(row._mapping)) for row in connection.execute(query)]


def lift_suppression(
    connection: sa.Connection,
    *,
    address: str,
    channel: Suppressed | None,
    why: str,
    actor: str,
    now: datetime,
) -> list[Suppression]:
    """Lift the active suppressions of ``address`` (one channel, or all of them); return them.

    The only way a suppression ends: the row stays, stamped with who lifted it, when and why.
    """
    why = why.strip()
    if not why:
        raise ValueError("indiquez pourquoi la désinscription est levée (--why)")
    normalised, _ = normalise_address(address)
    where = [SUPPRESSION.c.address == normalised, SUPPRESSION.c.lifted_at.is_(None)]
    if channel is not None:
        where.append(SUPPRESSION.c.channel == Suppressed(channel).value)
    lifted = [
        Suppression.model_validate(dict(row._mapping))
        for row in connection.execute(
            sa.update(SUPPRESSION)
            .where(*where)
            .values(lifted_at=now, lifted_by=actor[:200], lifted_why=why[:1000])
            .returning(*SUPPRESSION.c)
        )
    ]
    if not lifted:
        raise SuppressionNotFound(
            f"aucune désinscription en cours pour {normalised}"
            + (f" sur le canal « {Suppressed(channel).value} »" if channel else "")
        )
    for row in lifted:
        logger.warning(
            "suppression lifted: %s on %s by %s (%s)", row.address, row.channel, actor, why
        )
    return lifted


def _suppress_contact(
    connection: sa.Connection,
    contact: Contact,
    channels: Sequence[Suppressed],
    *,
    source: str,
    now: datetime,
    actor: str,
    reason: str | None = None,
) -> None:
    """Suppress the contact's address (e-mail channel) and number (SMS, calls) for ``channels``."""
    for channel in channels:
        targets = []
        if channel in (Suppressed.EMAIL, Suppressed.ALL) and contact.email:
            targets.append(contact.email)
        if channel in (Suppressed.SMS, Suppressed.PHONE, Suppressed.ALL) and contact.phone:
            targets.append(contact.phone)
        for address in targets:
            try:
                suppress(
                    connection, address=address, channel=channel, source=source, now=now,
                    actor=actor, reason=reason, contact_id=contact.id,
                )  # fmt: skip
            except NotAnAddress:
                # A number stored before E.164 was enforced and unreadable: nothing can reach it.
                logger.warning(
                    "contact %s: %s cannot be suppressed, unreadable", contact.public_id, channel
                )


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
    actor: str = "portal",
) -> list[Channel]:
    """Record that ``contact`` refuses each of ``channels``; return the channels not refused before.

    The contact's address (e-mail) and number (SMS, calls) go on the suppression list too.
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
    _suppress_contact(
        session.connection(), contact, [Suppressed(c.value) for c in wanted], source=source,
        now=now, actor=actor,
    )  # fmt: skip
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

    "Stop everything": every address and number of the contact, and of the company's other
    contacts (the page promises nothing more to the company), is suppressed on every channel.
    Every stage may move to ``opted_out`` (DESIGN.md); a company already there is left as it is.
    """
    channels = opt_out(
        session=session, contact=contact, channels=Channel, source=source, now=now, actor=actor
    )
    company = session.get(Company, contact.company_id)
    if company is None:  # the foreign key makes this impossible short of a broken database
        raise LookupError(f"contact {contact.public_id} has no company")
    connection = session.connection()
    reason = f"{company.name} ne veut plus être contactée ({_REASONS[suppression_source(source)]})"
    for person in session.exec(select(Contact).where(Contact.company_id == company.id)).all():
        _suppress_contact(
            connection, person, [Suppressed.ALL], source=source, now=now, actor=actor, reason=reason
        )
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
    """Whether ``contact_id`` may not be reached on ``channel``: refused, suppressed, or its company opted out."""
    return contact_id in opted_out_contact_ids(
        session=session, contact_ids=[contact_id], channel=channel
    )


def opted_out_contact_ids(
    *, session: Session, contact_ids: Iterable[int], channel: Channel
) -> set[int]:
    """Return those of ``contact_ids`` that may not be reached on ``channel`` (one query per batch).

    Refused on the contact's own row, suppressed on its address or number whatever row it
    came through, or its company opted out.
    """
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return set()
    channel = Channel(channel)
    # A company at opted_out means no message of any kind to any of its people (DESIGN.md).
    company_out = sa.exists().where(
        col(Company.id) == col(Contact.company_id), col(Company.stage) == Stage.OPTED_OUT
    )
    refusing = refused(
        contact_id=col(Contact.id), address=contact_address(channel), channel=channel
    )
    query = select(Contact.id).where(col(Contact.id).in_(ids), sa.or_(refusing, company_out))
    return {contact_id for contact_id in session.exec(query) if contact_id is not None}
