"""Sending claimed outbox rows: one batch over one connection, each message recorded before the next.

Used by campaign mailings (content rendered at send time from the database) and by
prepared messages, whose content was rendered when they were enqueued and is kept in
the row (callers' daily lists, visit invitations and reminders).
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from channels.base import Attachment, DeliveryResult, OutgoingEmail, OutgoingSms
from channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RecipientOptedOutError,
    SenderSideError,
)
from models.db import StatementPipe, autocommit_connection, write_connection
from models.enums import Channel, MessageStatus, Stage
from synergie.messaging.outbox import (
    RECORD_SENT,
    ClaimedMessage,
    claim,
    enqueue,
    message_key,
    new_message_id,
    record_delivery,
    renew_lease,
    requeue_unanswered,
    sent_parameters,
)
from synergie.settings import Settings, SettingsError

logger = logging.getLogger(__name__)
_Sendable = TypeVar("_Sendable", bound=OutgoingEmail | OutgoingSms)

# Prepared messages carry no campaign: the claim for them is "campaign_id IS NULL, any step".
PREPARED = None


class RateLimiter:
    """Spaces sends so that no more than ``per_minute`` leave in any minute."""

    def __init__(
        self,
        per_minute: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        """Return when the next message may leave."""
        if not self.interval:
            return
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


# The same permanent refusal for this many different recipients in a row is about us (the
# relay's policy, our sender, our content), not about each of them: the run stops.
SAME_REFUSALS_IN_A_ROW = 3


class SendingStopped(SettingsError):
    """The relay or our settings refuse our messages: the run stopped, its rows wait in the queue."""

    def __init__(self, error: DeliveryError, *, requeued: int) -> None:
        super().__init__(
            f"envoi arrêté : le serveur d'envoi ou nos réglages refusent nos messages ({error}). "
            f"Aucun destinataire n'a été marqué ; {requeued} message(s) attendent dans la file. "
            "Vérifiez SYNERGIE_MAIL_FROM, SYNERGIE_REPLY_TO, les modèles et les identifiants "
            "du relais SMTP ou de Twilio, puis relancez l'envoi."
        )
        self.error = error
        self.requeued = requeued


_ANGLED = re.compile(r"<[^<>]*>")


class FaultTriage:
    """Tells, answer by answer, whether a refusal is about one recipient or about us.

    A SenderSideError stops the batch at once. A permanent refusal is held back (not yet
    recorded, so nobody is marked) while the next answers show whether the same wording
    comes back for other recipients: at ``limit`` different recipients in a row (different
    domains for e-mail, so that three stale addresses of one company are not taken for a
    relay's policy) it is our fault too. Once stopped, nothing more is blamed on anyone.
    """

    def __init__(self, limit: int = SAME_REFUSALS_IN_A_ROW) -> None:
        self.limit = limit
        self.stopped: DeliveryError | None = None
        self.held: list[DeliveryResult] = []
        self._wording: tuple[object, ...] | None = None
        self._who: set[str] = set()

    def take(
        self, result: DeliveryResult, address: str
    ) -> tuple[list[DeliveryResult], list[DeliveryResult]]:
        """Return the results to record now, and those to put back in the queue untouched."""
        error = result.error
        if self.stopped is not None:
            return ([result] if error is None else []), ([] if error is None else [result])
        if isinstance(error, SenderSideError):
            self.stopped = error
            return [], self._release() + [result]
        if not isinstance(error, PermanentDeliveryError) or isinstance(
            error, RecipientOptedOutError
        ):
            return self._release() + [result], []
        wording = _wording(error, address)
        flushed = self._release() if wording != self._wording else []
        self._wording = wording
        self.held.append(result)
        self._who.add(address.rpartition("@")[2].lower() or address)
        if len(self._who) >= self.limit:
            self.stopped = SenderSideError(
                f"the same refusal for {len(self.held)} different recipients in a row: "
                f"{error.detail}",
                code=error.code,
            )
            return flushed, self._release()
        return flushed, []

    def finish(self) -> list[DeliveryResult]:
        """Return the refusals still held: the batch ended before they could be told apart."""
        return self._release()

    def _release(self) -> list[DeliveryResult]:
        held, self.held, self._wording, self._who = self.held, [], None, set()
        return held


def _wording(error: DeliveryError, address: str) -> tuple[object, ...]:
    """What makes two refusals the same, whoever they were about: class, code, text without the address."""
    text = re.sub(re.escape(address), "", error.detail, flags=re.IGNORECASE)
    return type(error), error.code, " ".join(_ANGLED.sub("<>", text).lower().split())


@dataclass
class BatchOutcome:
    """What one batch did: rows claimed and their final statuses."""

    claimed: int = 0
    statuses: dict[MessageStatus, int] = field(
        default_factory=lambda: dict.fromkeys(MessageStatus, 0)
    )

    def add(self, status: MessageStatus) -> None:
        self.statuses[status] += 1


@dataclass(frozen=True)
class SendPolicy:
    """How a run sends: lease on claimed rows, retries, and who it is in the history."""

    lease: timedelta
    max_attempts: int
    retry_base: timedelta
    actor: str

    @classmethod
    def from_settings(cls, settings: Settings, *, actor: str) -> SendPolicy:
        """The policy the settings describe, for a run known as ``actor``."""
        return cls(
            lease=timedelta(seconds=settings.send_lease_seconds),
            max_attempts=settings.max_send_attempts,
            retry_base=timedelta(seconds=settings.retry_backoff_seconds),
            actor=actor,
        )


def send_claimed(
    *,
    engine: sa.Engine,
    backend: Any,
    channel: Channel,
    campaign_id: int | None,
    step: str | None,
    limit: int,
    policy: SendPolicy,
    now: Callable[[], datetime],
    build: Callable[[sa.Connection, list[ClaimedMessage]], Iterable[OutgoingEmail | OutgoingSms]],
    throttle: RateLimiter | None = None,
    contacted_stage: Stage | None = Stage.CONTACTED,
) -> BatchOutcome:
    """Claim up to ``limit`` rows, build their messages, send them over one connection, record each.

    ``build`` reads what it needs from the connection before it returns; the iterable it
    returns may render each message lazily, when the backend asks for it (a pipelining
    backend renders message k+1 while the server digests message k). When the answers show
    that the fault is ours (FaultTriage), the batch stops, every row not sent goes back to
    the queue as it was, no recipient is marked, and SendingStopped is raised.
    """
    outcome = BatchOutcome()
    with write_connection(engine) as connection:
        claimed_at = now()
        with connection.begin():
            claimed = claim(
                connection, campaign_id=campaign_id, step=step, channel=channel, limit=limit,
                now=claimed_at, lease=policy.lease, claimed_by=policy.actor[:100],
            )  # fmt: skip
        outcome.claimed = len(claimed)
        if not claimed:
            return outcome
        messages = build(connection, claimed)
        connection.rollback()  # end the read before the slow part: sending
        by_key = {message.key: message for message in claimed}
        lease = LeaseKeeper(
            connection, claimed, held_until=claimed_at + policy.lease, lease=policy.lease, now=now
        )
        triage = FaultTriage()
        # Rows answered but not to be blamed, with the lease they were answered under (a
        # row's lease is no longer renewed once it has its answer).
        fences: dict[str, datetime] = {}
        unanswered: dict[int, datetime] = {}

        def write(result: DeliveryResult) -> None:
            with connection.begin():
                status = record_delivery(
                    connection, by_key[result.key], result, now=now(), max_attempts=policy.max_attempts,
                    retry_base=policy.retry_base, actor=policy.actor, contacted_stage=contacted_stage,
                )  # fmt: skip
            outcome.add(status)

        def record(result: DeliveryResult) -> Callable[[], object] | None:
            # Recorded before the next message can be accepted: a kill re-sends one at most.
            lease.release(result.key)
            pending = None
            if result.error is None and not triage.held and triage.stopped is None:
                # The hot path. On PostgreSQL the record is sent to the server on a
                # connection of its own (``pipe``) and the backend waits for it
                # (``pending``) before the next message's data is complete: the server
                # runs it while the relay reads the next message's first commands.
                # SQLite records in no time, here.
                if pipe is not None:
                    pipe.send(sent_parameters(
                        by_key[result.key], result, now=now(), actor=policy.actor, contacted_stage=contacted_stage,
                    ))  # fmt: skip
                    outcome.add(MessageStatus.SENT)
                    pending = pipe.wait
                else:
                    write(result)
            else:
                fences[result.key] = lease.held_until
                settled, put_back = triage.take(result, by_key[result.key].to_address)
                for each in settled:
                    write(each)
                unanswered.update((by_key[r.key].id, fences[r.key]) for r in put_back)
                if triage.stopped is not None:
                    lease.stop()
            if throttle is not None:
                throttle.wait()
            return pending

        # A result handed over is recorded (its waiter called, see ResultLog) before the
        # next one is, and before anything else is written on ``connection``.
        with ExitStack() as recording:
            pipe: StatementPipe | None = None
            if engine.dialect.name == "postgresql":
                on = recording.enter_context(autocommit_connection(engine))
                pipe = StatementPipe(on, RECORD_SENT)
                recording.callback(pipe.close)
            backend.send_messages(lease.held(messages), on_result=record)
        for each in triage.finish():
            write(each)
        if triage.stopped is not None:
            unanswered.update((row, lease.held_until) for row in lease.unsent.values())
            with connection.begin():
                requeued = requeue_unanswered(
                    connection, unanswered, now=now(), why=str(triage.stopped)
                )
            logger.error(
                "sending stopped, %d message(s) back in the queue: %s", requeued, triage.stopped
            )
            raise SendingStopped(triage.stopped, requeued=requeued)
    return outcome


class LeaseKeeper:
    """Keeps a batch's lease on the rows it has not sent yet, however long the batch takes.

    The lease is renewed once half of it has gone by, so no other run can claim a row
    in the middle of the batch (a slow server or a low rate would otherwise let the
    lease run out and the row leave twice). The renewal is fenced on the lease this
    batch holds: a row another run took meanwhile (this process was stalled, say) is
    dropped from the batch instead of being sent.
    """

    def __init__(
        self,
        connection: sa.Connection,
        claimed: list[ClaimedMessage],
        *,
        held_until: datetime,
        lease: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self.connection = connection
        self.lease = lease
        self.now = now
        self.held_until = held_until
        self.unsent = {message.key: message.id for message in claimed}
        self.stopped = False

    def release(self, key: str) -> None:
        """``key`` has its answer: it no longer needs the lease."""
        self.unsent.pop(key, None)

    def stop(self) -> None:
        """Hand on no more messages: the rows left keep their lease until put back in the queue."""
        self.stopped = True

    def held(self, messages: Iterable[_Sendable]) -> Iterator[_Sendable]:
        """``messages``, each handed on only while this batch still holds its row and is not stopped."""
        for message in messages:
            if self.stopped:
                return
            moment = self.now()
            if moment >= self.held_until - self.lease / 2:
                self._renew(moment)
            if message.key in self.unsent:
                yield message

    def _renew(self, moment: datetime) -> None:
        until = moment + self.lease
        with self.connection.begin():
            kept = renew_lease(
                self.connection, list(self.unsent.values()), held_until=self.held_until, until=until
            )
        lost = [key for key, row in self.unsent.items() if row not in kept]
        for key in lost:
            del self.unsent[key]
        if lost:
            logger.warning("lease lost on %d message(s), left to the run that took them", len(lost))
        self.held_until = until


def prepared_email(
    *,
    subject: str,
    text: str,
    html: str,
    to_name: str = "",
    headers: dict[str, str] | None = None,
    alternatives: Sequence[tuple[bytes, str]] = (),
    attachments: Sequence[Attachment] = (),
) -> dict[str, Any]:
    """The stored form (JSON) of an e-mail rendered now and sent later."""
    return {
        "subject": subject, "text": text, "html": html, "to_name": to_name, "headers": headers or {},
        "alternatives": [[base64.b64encode(c).decode(), ctype] for c, ctype in alternatives],
        "attachments": [[a.filename, base64.b64encode(a.content).decode(), a.mimetype] for a in attachments],
    }  # fmt: skip


def prepared_sms(body: str) -> dict[str, Any]:
    """The stored form (JSON) of an SMS rendered now and sent later."""
    return {"body": body}


def outgoing_from_row(message: ClaimedMessage, channel: Channel) -> OutgoingEmail | OutgoingSms:
    """The message a prepared outbox row holds."""
    stored = message.context or {}
    if channel == Channel.SMS:
        return OutgoingSms(key=message.key, to=message.to_address, body=stored["body"])
    return OutgoingEmail(
        key=message.key, to=message.to_address, to_name=stored.get("to_name", ""),
        subject=stored["subject"], text=stored["text"], html=stored["html"],
        message_id=message.message_id, headers=dict(stored.get("headers", {})),
        alternatives=tuple((base64.b64decode(c), t) for c, t in stored.get("alternatives", [])),
        attachments=tuple(Attachment(n, base64.b64decode(c), t) for n, c, t in stored.get("attachments", [])),
    )  # fmt: skip


def enqueue_prepared(
    connection: sa.Connection,
    *,
    step: str,
    recipient: str,
    channel: Channel,
    to_address: str,
    content: dict[str, Any],
    domain: str,
    now: datetime,
    contact_id: int | None = None,
    company_id: int | None = None,
) -> bool:
    """Enqueue one prepared message under its unique key (step + recipient + channel); True if new."""
    row = {
        "key": message_key(campaign_id=None, step=step, recipient=recipient, channel=channel),
        "campaign_id": None, "step": step, "channel": channel.value, "contact_id": contact_id,
        "company_id": company_id, "to_address": to_address, "message_id": new_message_id(domain),
        "context": content,
    }  # fmt: skip
    return enqueue(connection, [row], now=now) == 1


def send_prepared(
    *,
    engine: sa.Engine,
    backend: Any,
    channel: Channel,
    limit: int,
    policy: SendPolicy,
    now: Callable[[], datetime],
    throttle: RateLimiter | None = None,
    step: str | None = None,
) -> BatchOutcome:
    """Send up to ``limit`` due prepared messages of ``channel`` (of ``step``, or any); companies do not move."""
    return send_claimed(
        engine=engine, backend=backend, channel=channel, campaign_id=PREPARED, step=step, limit=limit,
        policy=policy, now=now, build=lambda _, claimed: (outgoing_from_row(m, channel) for m in claimed),
        throttle=throttle, contacted_stage=None,
    )  # fmt: skip
