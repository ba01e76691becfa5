"""Prepared messages: rendered when enqueued, stored in the outbox row, sent later exactly once."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from channels.base import Attachment
from channels.locmem import MemoryEmailBackend, MemorySmsBackend
from models import Channel, Company, Message, MessageStatus, Stage
from synergie.messaging.sending import (
    RateLimiter,
    SendPolicy,
    enqueue_prepared,
    prepared_email,
    prepared_sms,
    send_prepared,
)
from tests.factories import NOW, make_company

POLICY = SendPolicy(
    lease=timedelta(minutes=5), max_attempts=3, retry_base=timedelta(seconds=1), actor="test"
)
ICS = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


def test_prepared_email_and_sms_go_out_once_with_their_parts(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company_id = make_company(session).id
        session.commit()
    content = prepared_email(
        subject="Visite le 3 décembre", text="Bonjour", html="<p>Bonjour</p>", to_name="Élise",
        alternatives=[(ICS, "text/calendar; method=REQUEST")],
        attachments=[Attachment("invitation.ics", ICS, "application/ics")],
    )  # fmt: skip
    with engine.begin() as connection:
        assert enqueue_prepared(
            connection, step="visite-1@example.org/0", recipient="contact:1", channel=Channel.EMAIL,
            to_address="e@example.org", content=content, domain="example.org", now=NOW, company_id=company_id,
        )  # fmt: skip
        assert not enqueue_prepared(  # the same key again: nothing new
            connection, step="visite-1@example.org/0", recipient="contact:1", channel=Channel.EMAIL,
            to_address="e@example.org", content=content, domain="example.org", now=NOW,
        )  # fmt: skip
        enqueue_prepared(connection, step="rappel-1", recipient="contact:1", channel=Channel.SMS,
                         to_address="+33639981234", content=prepared_sms("Rappel : visite demain"),
                         domain="example.org", now=NOW)  # fmt: skip
    mail, sms = MemoryEmailBackend(), MemorySmsBackend()
    later = lambda: datetime.now(UTC)  # noqa: E731
    for _ in range(2):  # the second round finds nothing left
        send_prepared(
            engine=engine, backend=mail, channel=Channel.EMAIL, limit=10, policy=POLICY, now=later
        )
        send_prepared(
            engine=engine, backend=sms, channel=Channel.SMS, limit=10, policy=POLICY, now=later
        )
    assert [m.subject for m in mail.outbox] == ["Visite le 3 décembre"]
    assert [(m.to, m.body) for m in sms.outbox] == [("+33639981234", "Rappel : visite demain")]
    parsed = email.message_from_bytes(mail.raw[mail.outbox[0].key])
    types = [part.get_content_type() for part in parsed.walk()]
    assert "text/calendar" in types and "application/ics" in types
    with Session(engine) as session:
        assert {m.status for m in session.exec(select(Message))} == {MessageStatus.SENT}
        assert session.get(Company, company_id).stage == Stage.LISTED  # type: ignore[union-attr]


def test_sms_faults_from_twilio_lose_nothing_and_send_nothing_twice(
    engine: sa.Engine, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from models import Contact, OptOut
    from synergie.messaging.transports import sms_backend
    from synergie.settings import Settings
    from tests.factories import make_contact
    from tests.servers.twilio_server import FakeTwilio

    numbers = ["+33639981001", "+33639981002", "+33639981003", "+33639981004"]
    with Session(engine) as session:
        company = make_company(session)
        contacts = [make_contact(session, company, phone=n, identity=f"phone:{n}") for n in numbers]
        ids = [c.id for c in contacts]
        session.commit()
    with engine.begin() as connection:
        for contact_id, number in zip(ids, numbers, strict=True):
            enqueue_prepared(connection, step="rappel", recipient=f"contact:{contact_id}", channel=Channel.SMS,
                             to_address=number, content=prepared_sms("Rappel"), domain="example.org",
                             now=NOW, contact_id=contact_id)  # fmt: skip
    policy = SendPolicy(
        lease=timedelta(minutes=5), max_attempts=5, retry_base=timedelta(milliseconds=1), actor="t"
    )
    with FakeTwilio() as server:
        server.throttle_next(1)  # 429 for the first request
        server.crash_next(0)
        server.mark_invalid(numbers[2])  # 21211
        server.mark_opted_out(numbers[3])  # 21610: replied STOP
        settings = Settings(data_dir=tmp_path, sms_backend="twilio", twilio_account_sid=server.account_sid,
                            twilio_from="+33639980000", twilio_api_url=server.url)  # fmt: skip
        for round_ in range(6):
            if round_ == 1:
                server.crash_next(1)  # a 500 on the retry round
            send_prepared(engine=engine, backend=sms_backend(settings, auth_token=server.auth_token),
                          channel=Channel.SMS, limit=10, policy=policy, now=lambda: datetime.now(UTC))  # fmt: skip
        delivered = sorted(m["to"] for m in server.messages)
    assert delivered == numbers[:2]  # each good number exactly once, after the 429 and the 500
    with Session(engine) as session:
        statuses = {m.to_address: m.status for m in session.exec(select(Message))}
        invalid = session.get(Contact, ids[2])
        stops = session.exec(select(OptOut)).all()
    assert statuses == {numbers[0]: MessageStatus.SENT, numbers[1]: MessageStatus.SENT,
                        numbers[2]: MessageStatus.BOUNCED, numbers[3]: MessageStatus.BOUNCED}  # fmt: skip
    assert invalid is not None and invalid.phone_invalid_at is not None
    assert [(o.contact_id, o.channel, o.source) for o in stops] == [
        (ids[3], Channel.SMS, "carrier-stop")
    ]


class SlowRun:
    """A fake clock for one batch: each pause of the rate limiter lasts ``pause`` seconds, and
    ``rival`` (another run trying to claim) is called once the clock passes ``rival_at``."""

    def __init__(self, *, pause: float, rival_at: float, rival: Callable[[datetime], None]) -> None:
        self.start, self.elapsed = NOW, 0.0
        self.pause, self.rival_at, self.rival = pause, rival_at, rival
        self.rival_ran = False

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, _seconds: float) -> None:
        self.elapsed += self.pause
        if self.elapsed >= self.rival_at and not self.rival_ran:
            self.rival_ran = True
            self.rival(self.now())


def enqueue_sms(engine: sa.Engine, count: int) -> None:
    with engine.begin() as connection:
        for n in range(count):
            enqueue_prepared(connection, step=f"rappel-{n}", recipient=f"contact:{n}", channel=Channel.SMS,
                             to_address=f"+3363998{n:04d}", content=prepared_sms(f"Rappel {n}"),
                             domain="example.org", now=NOW)  # fmt: skip


@pytest.mark.parametrize(
    ("pause", "rival_at", "rival_gets"),
    [
        # The batch outlives its 10 s lease a little at a time: renewed, the rival gets nothing.
        (4.0, 11.0, 0),
        # The batch stalls for longer than the lease: the rival takes the rest, the batch drops it.
        (30.0, 30.0, 4),
    ],
)
def test_a_batch_longer_than_its_lease_never_shares_a_message(
    engine: sa.Engine, pause: float, rival_at: float, rival_gets: int
) -> None:
    enqueue_sms(engine, 6)
    policy = SendPolicy(
        lease=timedelta(seconds=10), max_attempts=3, retry_base=timedelta(seconds=1), actor="lent"
    )
    ours, theirs = MemorySmsBackend(), MemorySmsBackend()

    def rival(moment: datetime) -> None:
        send_prepared(engine=engine, backend=theirs, channel=Channel.SMS, limit=10, now=lambda: moment,
                      policy=SendPolicy(lease=timedelta(seconds=10), max_attempts=3,
                                        retry_base=timedelta(seconds=1), actor="rival"))  # fmt: skip

    clock = SlowRun(pause=pause, rival_at=rival_at, rival=rival)
    throttle = RateLimiter(60 / pause, clock=clock.monotonic, sleep=clock.sleep)
    outcome = send_prepared(engine=engine, backend=ours, channel=Channel.SMS, limit=10, policy=policy,
                            now=clock.now, throttle=throttle)  # fmt: skip

    assert clock.rival_ran and len(theirs.outbox) == rival_gets
    sent = [m.to for m in ours.outbox + theirs.outbox]
    assert sorted(sent) == sorted(f"+3363998{n:04d}" for n in range(6))  # each exactly once
    assert outcome.claimed == 6 and outcome.statuses[MessageStatus.SENT] == 6 - rival_gets
