"""The outbox: a send is a row first and a message second.

Rows are enqueued under a unique key, claimed atomically with a lease before the
transport is called, and marked one by one right after each message leaves, so a run
killed at any moment re-sends at most the one message it was sending, and two runs of
the same step never send the same row twice.

    queued ──claim──▶ sending ──sent──▶ sent
       ▲                 │ transient (attempts left) ─▶ queued, later
       │                 │ transient (no attempts left) ─▶ failed
       ├─ our fault ─────┤ (relay or settings refuse us) ─▶ queued as before the claim
       └─ lease expired ─┤ permanent ─▶ bounced
                         └ recipient opted out / company left ─▶ cancelled
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import DeliveryResult
from channels.errors import PermanentDeliveryError, RecipientOptedOutError
from models.columns import UTCDateTime
from models.db import DriverStatement
from models.enums import Channel, MessageStatus, Stage
from models.stages import transition
from models.tables import Company, Contact, Message, OptOut, StageChange
from synergie.messaging.optouts import NotAnAddress, refused, suppress

MESSAGE = Message.__table__  # type: ignore[attr-defined]
COMPANY = Company.__table__  # type: ignore[attr-defined]
CONTACT = Contact.__table__  # type: ignore[attr-defined]
OPT_OUT = OptOut.__table__  # type: ignore[attr-defined]
STAGE_CHANGE = StageChange.__table__  # type: ignore[attr-defined]

# Run for every message sent: compiled once, then straight to the driver.
_NOW = sa.bindparam("b_now", type_=UTCDateTime())


def _by_key_alone(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` as an expression no index matches, for a fence checked on a row found by its key.

    PostgreSQL costs "id = 7 AND stage = 'listed'" through the stage index as cheaply as
    through the primary key when its statistics are missing or stale (just after a listing
    import or an enqueue, before autovacuum's ANALYZE), and then reads every listed company
    to update one: a mailing to n companies read n² rows.
    """
    return sa.type_coerce(column, sa.String()).concat(sa.literal_column("''"))


def _mark_sent(fence: Callable[[Any], Any] = lambda column: column) -> sa.Update:
    return (
        sa.update(MESSAGE)
        .where(MESSAGE.c.id == sa.bindparam("b_id"), fence(MESSAGE.c.status) == MessageStatus.SENDING.value)
        .values(
            status=MessageStatus.SENT.value, lease_until=None, updated_at=_NOW, sent_at=_NOW,
            provider_id=sa.bindparam("b_provider"), last_error=None,
        )
    )  # fmt: skip


def _advance(fence: Callable[[Any], Any] = lambda column: column) -> sa.Update:
    return (
        sa.update(COMPANY)
        .where(COMPANY.c.id == sa.bindparam("b_company"), fence(COMPANY.c.stage) == sa.bindparam("b_from"))
        .values(stage=sa.bindparam("b_to"), updated_at=_NOW)
    )  # fmt: skip


_MARK_SENT = DriverStatement(_mark_sent())
_ADVANCE = DriverStatement(_advance())
_RECORD_CHANGE = DriverStatement(
    sa.insert(STAGE_CHANGE).values(
        company_id=sa.bindparam("b_company"), from_stage=sa.bindparam("b_from"),
        to_stage=sa.bindparam("b_to"), at=_NOW, why=sa.bindparam("b_why"), actor=sa.bindparam("b_actor"),
    )
)  # fmt: skip


def _record_sent_in_one_statement() -> DriverStatement:
    """On PostgreSQL: mark the message sent, move its company and write the history, in one statement.

    The three writes of ``_MARK_SENT``, ``_ADVANCE`` and ``_RECORD_CHANGE`` as one
    statement with data-modifying CTEs, atomic on its own: run outside a transaction
    (``models.db.autocommit_connection``) it is one round trip to the server instead of five
    (BEGIN, three statements, COMMIT). The history row is written only if the company
    moved, as ``advance_company`` does; a NULL company moves nothing. Both rows are found
    by their primary key whatever the statistics say (``_by_key_alone``).
    """
    moved = _advance(_by_key_alone).returning(COMPANY.c.id).cte("moved")
    stage = STAGE_CHANGE.c.from_stage.type
    history = sa.select(
        moved.c.id, sa.bindparam("b_from", type_=stage), sa.bindparam("b_to", type_=stage), _NOW,
        sa.bindparam("b_why", type_=sa.String()), sa.bindparam("b_actor", type_=sa.String()),
    )  # fmt: skip
    columns = ["company_id", "from_stage", "to_stage", "at", "why", "actor"]
    return DriverStatement(
        sa.insert(STAGE_CHANGE)
        .from_select(columns, history)
        .add_cte(_mark_sent(_by_key_alone).cte("sent"))
    )


RECORD_SENT = _record_sent_in_one_statement()

# A company in one of these stages must not receive anything more from a campaign step.
STOPPED_STAGES = (Stage.OPTED_OUT, Stage.CLOSED, Stage.DECLINED, Stage.UNREACHABLE)
RETRY_BACKOFF_CAP = timedelta(hours=1)


def message_key(*, campaign_id: int | None, step: str, recipient: str, channel: Channel) -> str:
    """The unique key of one send: campaign step + recipient + channel."""
    return f"campaign:{campaign_id or '-'}/step:{step}/{recipient}/{channel.value}"


def new_message_id(domain: str) -> str:
    """A Message-ID unique to one outbox row (yagmail's own repeats for the same from/to/subject)."""
    return f"<{uuid.uuid4().hex}@{domain}>"


@dataclass(frozen=True)
class ClaimedMessage:
    """An outbox row this run holds the lease on."""

    id: int
    key: str
    campaign_id: int | None
    step: str
    contact_id: int | None
    company_id: int | None
    to_address: str
    message_id: str
    attempts: int
    context: dict[str, Any] | None


_ENQUEUED_COLUMNS = (
    "key", "campaign_id", "step", "channel", "contact_id", "company_id", "to_address", "message_id",
    "context", "status", "attempts", "next_attempt_at", "created_at", "updated_at",
)  # fmt: skip
_ENQUEUE = {
    dialect.__name__.rpartition(".")[2]: DriverStatement(
        dialect.insert(MESSAGE)
        .values({name: sa.bindparam(name) for name in _ENQUEUED_COLUMNS})
        .on_conflict_do_nothing(index_elements=["key"])
    )
    for dialect in (sqlite, postgresql)
}


def enqueue(connection: sa.Connection, rows: Sequence[dict[str, Any]], *, now: datetime) -> int:
    """Insert outbox rows, skipping any whose key exists already; return how many were new.

    Each row gives the message's key, campaign_id, step, channel, contact_id, company_id,
    to_address and message_id, and may give its prepared ``context``.
    """
    if not rows:
        return 0
    keys = [row["key"] for row in rows]
    before = _count_keys(connection, keys)
    waiting = {"status": MessageStatus.QUEUED.value, "attempts": 0, "next_attempt_at": now,
               "created_at": now, "updated_at": now, "context": None}  # fmt: skip
    _ENQUEUE[connection.dialect.name].execute_many(connection, [{**waiting, **row} for row in rows])
    return _count_keys(connection, keys) - before


def _count_keys(connection: sa.Connection, keys: list[str]) -> int:
    total = 0
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        total += connection.execute(
            sa.select(sa.func.count()).select_from(MESSAGE).where(MESSAGE.c.key.in_(chunk))
        ).scalar_one()
    return total


def _ready(now: datetime) -> Any:
    return sa.or_(
        sa.and_(MESSAGE.c.status == MessageStatus.QUEUED.value, MESSAGE.c.next_attempt_at <= now),
        sa.and_(MESSAGE.c.status == MessageStatus.SENDING.value, MESSAGE.c.lease_until < now),
    )


def _scope(campaign_id: int | None, step: str | None, channel: Channel) -> Any:
    """Rows of one campaign step, or with step None every step (used for prepared messages)."""
    campaign = (
        MESSAGE.c.campaign_id.is_(None)
        if campaign_id is None
        else MESSAGE.c.campaign_id == campaign_id
    )
    steps = sa.true() if step is None else MESSAGE.c.step == step
    return sa.and_(campaign, steps, MESSAGE.c.channel == channel.value)


def cancel_unwanted(
    connection: sa.Connection,
    *,
    campaign_id: int | None,
    step: str | None,
    channel: Channel,
    now: datetime,
) -> int:
    """Cancel waiting rows whose recipient opted out or is suppressed (or whose company left); return how many.

    The suppression list is matched on the row's own address, so a message to a caller,
    or to a contact row created after the opt-out, is caught as well.
    """
    return _cancel(
        connection, _scope(campaign_id, step, channel), _ready(now), channel=channel, now=now
    )


def cancel_unwanted_everywhere(
    connection: sa.Connection, *, company_id: int | None, now: datetime
) -> int:
    """Cancel every row not yet on its way (any step, any channel, retries due later included)
    whose recipient opted out or is suppressed, or whose company left, for one company or all;
    return how many.

    A row a batch holds under a live lease is left to that batch: its claim checked already.
    """
    waiting = sa.or_(
        MESSAGE.c.status == MessageStatus.QUEUED.value,
        sa.and_(MESSAGE.c.status == MessageStatus.SENDING.value, MESSAGE.c.lease_until < now),
    )
    company = sa.true() if company_id is None else MESSAGE.c.company_id == company_id
    return sum(
        _cancel(
            connection,
            company,
            waiting,
            MESSAGE.c.channel == channel.value,
            channel=channel,
            now=now,
        )
        for channel in Channel
    )


def _cancel(connection: sa.Connection, *where: Any, channel: Channel, now: datetime) -> int:
    opted_out = refused(
        contact_id=MESSAGE.c.contact_id,
        address=sa.func.lower(MESSAGE.c.to_address),
        channel=channel,
    )
    company_left = sa.exists().where(
        COMPANY.c.id == MESSAGE.c.company_id, COMPANY.c.stage.in_([s.value for s in STOPPED_STAGES])
    )
    result = connection.execute(
        sa.update(MESSAGE)
        .where(*where, sa.or_(opted_out, company_left))
        .values(
            status=MessageStatus.CANCELLED.value,
            last_error="destinataire désinscrit ou entreprise sortie du parcours avant l'envoi",
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(
    connection: sa.Connection,
    *,
    campaign_id: int | None,
    step: str | None,
    channel: Channel,
    limit: int,
    now: datetime,
    lease: timedelta,
    claimed_by: str,
) -> list[ClaimedMessage]:
    """Atomically take up to ``limit`` ready rows for this run, with a lease; opted-out rows are cancelled first.

    Call it inside ``models.db.write_transaction``: on SQLite the statement then runs
    under the write lock; on PostgreSQL rows another run is claiming are skipped.
    """
    cancel_unwanted(connection, campaign_id=campaign_id, step=step, channel=channel, now=now)
    candidates = (
        sa.select(MESSAGE.c.id)
        .where(_scope(campaign_id, step, channel), _ready(now))
        .order_by(MESSAGE.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        # A CTE is run once: in a plain IN (subquery) PostgreSQL may re-run the subquery
        # per row, and with SKIP LOCKED each run picks other rows (a 3-row claim took 5).
        # Its ids are taken as one array (an InitPlan, also run once) and the rows found
        # through the primary key: joined to the CTE instead, with statistics not yet
        # gathered after an enqueue, PostgreSQL compared every ready row with every picked
        # one (5,000 x 500 rows: one second a batch, growing with the queue).
        # The rows it locked are ready (PostgreSQL checks the condition again on a row
        # changed before it was locked), and stay so until this statement commits.
        picked = candidates.with_for_update(skip_locked=True).cte("picked")
        chosen = MESSAGE.c.id == sa.any_(sa.func.array(sa.select(picked.c.id).scalar_subquery()))
    else:
        # Under SQLite's write lock nobody else can claim in between.
        chosen = sa.and_(MESSAGE.c.id.in_(candidates.scalar_subquery()), _ready(now))
    statement = (
        sa.update(MESSAGE)
        .where(chosen)
        .values(
            status=MessageStatus.SENDING.value,
            lease_until=now + lease,
            attempts=MESSAGE.c.attempts + 1,
            claimed_by=claimed_by,
            updated_at=now,
        )
        .returning(
            MESSAGE.c.id,
            MESSAGE.c.key,
            MESSAGE.c.campaign_id,
            MESSAGE.c.step,
            MESSAGE.c.contact_id,
            MESSAGE.c.company_id,
            MESSAGE.c.to_address,
            MESSAGE.c.message_id,
            MESSAGE.c.attempts,
            MESSAGE.c.context,
        )  # fmt: skip
    )
    rows = [ClaimedMessage(**row._mapping) for row in connection.execute(statement)]
    return sorted(rows, key=lambda row: row.id)


def renew_lease(
    connection: sa.Connection, ids: Sequence[int], *, held_until: datetime, until: datetime
) -> set[int]:
    """Extend to ``until`` the lease on rows still held under ``held_until``; return their ids.

    The lease held is the fence: a row claimed meanwhile by another run has another
    ``lease_until`` and is left alone.
    """
    kept: set[int] = set()
    for start in range(0, len(ids), 1000):
        result = connection.execute(
            sa.update(MESSAGE)
            .where(
                MESSAGE.c.id.in_(ids[start : start + 1000]),
                MESSAGE.c.status == MessageStatus.SENDING.value,
                MESSAGE.c.lease_until == held_until,
            )
            .values(lease_until=until)
            .returning(MESSAGE.c.id)
        )
        kept.update(row for (row,) in result)
    return kept


def requeue_unanswered(
    connection: sa.Connection, leases: dict[int, datetime], *, now: datetime, why: str
) -> int:
    """Put rows back in the queue as they were before the claim; return how many.

    For rows the run claimed and must give back without blaming anyone (the relay or our
    settings refused us): the attempt is not counted, the lease is released, and the row is
    due at once. ``leases`` maps each row to the lease this run held it under: a row another
    run has taken since is left alone.
    """
    done = 0
    for row, held_until in leases.items():
        result = connection.execute(
            sa.update(MESSAGE)
            .where(
                MESSAGE.c.id == row,
                MESSAGE.c.status == MessageStatus.SENDING.value,
                MESSAGE.c.lease_until == held_until,
            )
            .values(
                status=MessageStatus.QUEUED.value,
                lease_until=None,
                attempts=sa.case((MESSAGE.c.attempts > 0, MESSAGE.c.attempts - 1), else_=0),
                next_attempt_at=now,
                updated_at=now,
                last_error=f"non envoyé, rien n'est reproché au destinataire : {why}"[:1000],
            )
        )
        done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


def next_retry_at(
    connection: sa.Connection, *, campaign_id: int | None, step: str | None, channel: Channel
) -> datetime | None:
    """When the earliest row waiting for a retry (or for a lease to expire) becomes ready, if any."""
    scope = _scope(campaign_id, step, channel)
    retry = connection.execute(
        sa.select(MESSAGE.c.next_attempt_at)
        .where(scope, MESSAGE.c.status == MessageStatus.QUEUED.value)
        .order_by(MESSAGE.c.next_attempt_at)
        .limit(1)
    ).scalar()
    lease = connection.execute(
        sa.select(MESSAGE.c.lease_until)
        .where(scope, MESSAGE.c.status == MessageStatus.SENDING.value)
        .order_by(MESSAGE.c.lease_until)
        .limit(1)
    ).scalar()
    moments = [moment for moment in (retry, lease) if moment is not None]
    return min(moments) if moments else None


def retry_delay(attempts: int, base: timedelta) -> timedelta:
    """Exponential backoff after ``attempts`` tries, capped at an hour."""
    return min(base * (2 ** max(attempts - 1, 0)), RETRY_BACKOFF_CAP)


def sent_parameters(
    message: ClaimedMessage,
    result: DeliveryResult,
    *,
    now: datetime,
    actor: str,
    contacted_stage: Stage | None = Stage.CONTACTED,
) -> dict[str, Any]:
    """The parameters of ``RECORD_SENT`` for ``message``, sent (PostgreSQL's one-statement record)."""
    moves = message.company_id is not None and contacted_stage is not None
    if moves:
        transition(Stage.LISTED, contacted_stage)  # type: ignore[arg-type]
    return {
        "b_id": message.id, "b_now": now, "b_provider": result.provider_id,
        "b_company": message.company_id if moves else None, "b_from": Stage.LISTED.value,
        "b_to": (contacted_stage or Stage.LISTED).value, "b_why": _sent_why(message), "b_actor": actor,
    }  # fmt: skip


def record_delivery(
    connection: sa.Connection,
    message: ClaimedMessage,
    result: DeliveryResult,
    *,
    now: datetime,
    max_attempts: int,
    retry_base: timedelta,
    actor: str,
    contacted_stage: Stage | None = Stage.CONTACTED,
) -> MessageStatus:
    """Mark one message after the transport answered, and apply what the answer means.

    Sent: the company moves from ``listed`` to ``contacted_stage`` (once, through the
    stage machine). Permanent failure: the address is marked invalid, or the contact
    opted out of the channel when the carrier says so. Transient: retried later with
    backoff until ``max_attempts``, then failed.
    """
    error = result.error
    moves = message.company_id is not None and contacted_stage is not None
    if error is None and connection.dialect.name == "postgresql":
        # The hot path, once per message: every round trip to the server counts.
        RECORD_SENT.execute_on_driver(
            connection, sent_parameters(message, result, now=now, actor=actor, contacted_stage=contacted_stage)
        )  # fmt: skip
        return MessageStatus.SENT
    if error is None:
        # The hot path on SQLite: statements built once (building one cost more than
        # SQLite takes to run it); there a round trip costs nothing.
        status = MessageStatus.SENT
        _MARK_SENT.execute(
            connection, {"b_id": message.id, "b_now": now, "b_provider": result.provider_id}
        )
    else:
        values: dict[str, Any] = {}
        if isinstance(error, PermanentDeliveryError):
            status = MessageStatus.BOUNCED
        elif message.attempts >= max_attempts:
            status = MessageStatus.FAILED
        else:
            status = MessageStatus.QUEUED
            values["next_attempt_at"] = now + retry_delay(message.attempts, retry_base)
        connection.execute(
            sa.update(MESSAGE)
            .where(MESSAGE.c.id == message.id, MESSAGE.c.status == MessageStatus.SENDING.value)
            .values(
                status=status.value,
                lease_until=None,
                updated_at=now,
                last_error=str(error)[:1000],
                error_code=error.code,
                **values,
            )  # fmt: skip
        )
    if status == MessageStatus.SENT and moves:
        advance_company(
            connection, company_id=message.company_id, from_stage=Stage.LISTED, to_stage=contacted_stage,  # type: ignore[arg-type]
            why=_sent_why(message), actor=actor, now=now,
        )  # fmt: skip
    if isinstance(error, RecipientOptedOutError):
        _record_carrier_opt_out(connection, message, now)
    elif isinstance(error, PermanentDeliveryError) and message.contact_id is not None:
        mark_address_invalid(
            connection, contact_id=message.contact_id, address=message.to_address, now=now
        )
    return status


def _sent_why(message: ClaimedMessage) -> str:
    """The history's reason for a company moved by ``message``."""
    return f"message « {message.step} » envoyé à {message.to_address}"[:1000]


def mark_address_invalid(
    connection: sa.Connection, *, contact_id: int, address: str, now: datetime
) -> bool:
    """Mark ``address`` (an e-mail address or a number) of a contact invalid; True if it changed.

    What a permanent refusal about one recipient means, whether the relay said it at once or
    a delivery status notification said it an hour later. An address the contact no longer
    has (corrected since) is left alone; a date already set is kept.
    """
    column = "email_invalid_at" if "@" in address else "phone_invalid_at"
    field = CONTACT.c.email if column == "email_invalid_at" else CONTACT.c.phone
    result = connection.execute(
        sa.update(CONTACT)
        .where(
            CONTACT.c.id == contact_id,
            sa.func.lower(field) == address.strip().lower(),
            CONTACT.c[column].is_(None),
        )
        .values(**{column: now})
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SentMessage:
    """An outbox row already sent, as a delivery status notification finds it by its Message-ID."""

    id: int
    contact_id: int | None
    company_id: int | None
    to_address: str
    message_id: str
    status: MessageStatus


def find_sent_messages(connection: sa.Connection, message_ids: Sequence[str]) -> list[SentMessage]:
    """Return the e-mail outbox rows whose Message-ID is one of ``message_ids`` (angle brackets included)."""
    wanted = list(dict.fromkeys(message_ids))[:100]
    if not wanted:
        return []
    rows = connection.execute(
        sa.select(
            MESSAGE.c.id, MESSAGE.c.contact_id, MESSAGE.c.company_id, MESSAGE.c.to_address,
            MESSAGE.c.message_id, MESSAGE.c.status,
        ).where(MESSAGE.c.message_id.in_(wanted), MESSAGE.c.channel == Channel.EMAIL.value)
    )  # fmt: skip
    return [SentMessage(**{**row._mapping, "status": MessageStatus(row.status)}) for row in rows]


def record_late_bounce(
    connection: sa.Connection, message: SentMessage, *, error: PermanentDeliveryError, now: datetime
) -> bool:
    """Record a permanent failure reported after the relay accepted ``message``; True if the address changed.

    The row moves from ``sent`` to ``bounced`` with the reason, and the address is marked
    invalid exactly as a refusal at sending time marks it (``mark_address_invalid``).
    """
    connection.execute(
        sa.update(MESSAGE)
        .where(MESSAGE.c.id == message.id, MESSAGE.c.status == MessageStatus.SENT.value)
        .values(
            status=MessageStatus.BOUNCED.value,
            last_error=str(error)[:1000],
            error_code=error.code,
            updated_at=now,
        )
    )
    if message.contact_id is None:
        return False
    return mark_address_invalid(
        connection, contact_id=message.contact_id, address=message.to_address, now=now
    )


def _record_carrier_opt_out(
    connection: sa.Connection, message: ClaimedMessage, now: datetime
) -> None:
    """The carrier says the recipient sent STOP: suppress the number, whoever it belongs to."""
    channel = connection.execute(
        sa.select(MESSAGE.c.channel).where(MESSAGE.c.id == message.id)
    ).scalar_one()
    # The carrier would not have answered 21610 about a number it could not read.
    with contextlib.suppress(NotAnAddress):
        suppress(
            connection, address=message.to_address, channel=channel, source="sms-stop", now=now,
            actor="carrier", contact_id=message.contact_id,
        )  # fmt: skip
    if message.contact_id is None:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(OPT_OUT)
        .values(contact_id=message.contact_id, channel=channel, at=now, source="carrier-stop")
        .on_conflict_do_nothing(index_elements=["contact_id", "channel"])
    )


def advance_company(
    connection: sa.Connection,
    *,
    company_id: int,
    from_stage: Stage,
    to_stage: Stage,
    why: str,
    actor: str,
    now: datetime,
) -> bool:
    """Move a company from ``from_stage`` to ``to_stage`` if it still stands there; record it.

    The move goes through the stage machine; a company that has moved on already is left
    alone (it returns False), which is what a second contact of the same company needs.
    """
    transition(from_stage, to_stage)
    values = {
        "b_company": company_id,
        "b_from": from_stage.value,
        "b_to": to_stage.value,
        "b_now": now,
    }
    if not _ADVANCE.execute(connection, values).rowcount:
        return False
    _RECORD_CHANGE.execute(connection, {**values, "b_why": why[:1000], "b_actor": actor})
    return True


def step_counts(
    connection: sa.Connection, *, campaign_id: int | None, step: str | None, channel: Channel
) -> dict[MessageStatus, int]:
    """How many rows of this step stand at each status."""
    counts = dict.fromkeys(MessageStatus, 0)
    query = (
        sa.select(MESSAGE.c.status, sa.func.count())
        .where(_scope(campaign_id, step, channel))
        .group_by(MESSAGE.c.status)
    )
    for status, count in connection.execute(query):
        counts[MessageStatus(status)] = count
    return counts
