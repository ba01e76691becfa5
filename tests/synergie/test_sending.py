"""Prepared messages: rendered when enqueued, stored in the outbox row, sent later exactly once."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from channels.base import Attachment
from channels.locmem import MemoryEmailBackend, MemorySmsBackend
from models import Channel, Company, Message, MessageStatus, Stage
from synergie.sending import (
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
