"""Mailing without Prefect: who is due, what leaves, and what the outbox does with each answer."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from channels.locmem import MemoryEmailBackend
from models import Campaign, Channel, Company, Contact, Message, MessageStatus, OptOut, Stage
from synergie.mailing.campaigns import (
    MailComposer,
    RateLimiter,
    SendPolicy,
    enqueue_recipients,
    find_campaign,
    select_recipients,
    send_batch,
)
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from tests.factories import NOW, make_company, make_contact
from tests.servers.smtp_server import ReceivedMessage, SmtpTestServer

STEP = "premier-courrier"
POLICY = SendPolicy(
    lease=timedelta(minutes=5), max_attempts=3, retry_base=timedelta(milliseconds=1), actor="test"
)


def territory(engine: sa.Engine, people: int = 6) -> Campaign:
    """A campaign on 21464 with ``people`` contacts at listed companies, plus companies it must not mail."""
    with Session(engine) as session:
        campaign = Campaign(name="Nuits", year=2026, communes=["21464"])
        session.add(campaign)
        for n in range(people):
            make_contact(session, make_company(session, name=f"Entreprise {n:02d}"), email=f"p{n}@example.org",
                         identity=f"email:p{n}@example.org")  # fmt: skip
        make_contact(session, make_company(session, name="Ailleurs", commune_code="21295"))
        make_contact(session, make_company(session, name="Déjà contactée", stage=Stage.CONTACTED))
        make_contact(
            session, make_company(session, name="Sans courriel"), email=None, phone="+33639980000"
        )
        bounced = make_contact(session, make_company(session, name="Adresse invalide"))
        bounced.email_invalid_at = NOW
        session.commit()
        session.refresh(campaign)
        return campaign


def enqueue_all(engine: sa.Engine, campaign: Campaign) -> int:
    with engine.begin() as connection:
        due = select_recipients(connection, campaign=campaign, step=STEP)
        return enqueue_recipients(
            connection, due, campaign=campaign, step=STEP, domain="example.org", now=NOW
        )


def send_all(
    engine: sa.Engine,
    settings: Settings,
    backend,
    campaign: Campaign,
    *,
    batch: int = 4,
    rounds: int = 50,
):  # type: ignore[no-untyped-def]
    composer = MailComposer(settings=settings, templates=MailTemplates(), template=STEP)
    outcomes = []
    for _ in range(rounds):
        outcome = send_batch(engine=engine, backend=backend, composer=composer, campaign_id=campaign.id, step=STEP,
                             limit=batch, policy=POLICY, now=lambda: datetime.now(UTC))  # fmt: skip
        if not outcome.claimed:
            # Retries are due a millisecond later; wait that long before giving up.
            pending = outbox(engine, MessageStatus.QUEUED)
            if not pending:
                break
            continue
        outcomes.append(outcome)
    return outcomes


def outbox(engine: sa.Engine, status: MessageStatus | None = None) -> list[Message]:
    with Session(engine) as session:
        query = select(Message).order_by(Message.id)
        if status is not None:
            query = query.where(Message.status == status)
        return list(session.exec(query))


def test_only_listed_companies_of_the_territory_with_a_usable_address_are_due(
    engine: sa.Engine,
) -> None:
    campaign = territory(engine)
    with engine.connect() as connection:
        due = select_recipients(connection, campaign=campaign, step=STEP)
    assert [r.company_name for r in due] == [f"Entreprise {n:02d}" for n in range(6)]
    assert enqueue_all(engine, campaign) == 6
    with engine.connect() as connection:  # enqueued once: not due any more
        assert select_recipients(connection, campaign=campaign, step=STEP) == []


def test_a_batch_leaves_personalised_with_unsubscribe_headers_and_moves_companies(
    engine: sa.Engine, settings: Settings
) -> None:
    campaign = territory(engine)
    enqueue_all(engine, campaign)
    backend = MemoryEmailBackend(sender=settings.mail_from)
    send_all(engine, settings, backend, campaign)
    assert sorted(m.to for m in backend.outbox) == sorted(f"p{n}@example.org" for n in range(6))
    assert len({m.message_id for m in backend.outbox}) == 6
    first = email.message_from_bytes(backend.raw[backend.outbox[0].key])
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://" in first["List-Unsubscribe"] or "http://" in first["List-Unsubscribe"]
    assert "mailto:" in first["List-Unsubscribe"]
    assert "Entreprise" in first["Subject"] or "Entreprise" in backend.outbox[0].text
    assert [m.status for m in outbox(engine)] == [MessageStatus.SENT] * 6
    with Session(engine) as session:
        stages = {c.name: c.stage for c in session.exec(select(Company))}
    assert all(stages[f"Entreprise {n:02d}"] == Stage.CONTACTED for n in range(6))
    assert stages["Ailleurs"] == Stage.LISTED


def test_an_opt_out_between_selection_and_send_stops_that_message(
    engine: sa.Engine, settings: Settings
) -> None:
    campaign = territory(engine)
    enqueue_all(engine, campaign)
    with Session(engine) as session:
        contact = session.exec(select(Contact).where(Contact.email == "p3@example.org")).one()
        session.add(OptOut(contact_id=contact.id, channel=Channel.EMAIL, at=NOW, source="portal"))
        session.commit()
    backend = MemoryEmailBackend(sender=settings.mail_from)
    send_all(engine, settings, backend, campaign)
    assert "p3@example.org" not in {m.to for m in backend.outbox} and len(backend.outbox) == 5
    [cancelled] = outbox(engine, MessageStatus.CANCELLED)
    assert cancelled.to_address == "p3@example.org" and cancelled.sent_at is None


def test_smtp_faults_are_retried_or_marked_and_nothing_is_lost(
    engine: sa.Engine, settings: Settings, smtp_server: SmtpTestServer
) -> None:
    campaign = territory(engine)
    enqueue_all(engine, campaign)
    smtp_server.refuse_next_connections(1)  # 421 at connect: the whole first batch waits
    smtp_server.reply_to_rcpt("p1@example.org", "451 4.7.1 Greylisted, try again", times=1)
    smtp_server.reply_to_rcpt("p2@example.org", "550 5.1.1 No such user")
    with Session(engine) as session:
        target = session.exec(select(Message).where(Message.to_address == "p4@example.org")).one()
    smtp_server.drop_during_data(target.message_id)  # the connection dies in the middle of DATA
    backend = smtp_server.client(sender=settings.mail_from)
    outcomes = send_all(engine, settings, backend, campaign, batch=3)

    received = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert sorted(received) == sorted(
        f"p{n}@example.org" for n in (0, 1, 3, 4, 5)
    )  # each exactly once
    rows = {m.to_address: m for m in outbox(engine)}
    assert (
        rows["p2@example.org"].status == MessageStatus.BOUNCED
        and rows["p2@example.org"].error_code == 550
    )
    assert "No such user" in (rows["p2@example.org"].last_error or "")
    # Greylisted once, dropped once (and maybe caught in the refused first batch): sent in the end.
    assert (
        rows["p1@example.org"].status == MessageStatus.SENT and rows["p1@example.org"].attempts >= 2
    )
    assert (
        rows["p4@example.org"].status == MessageStatus.SENT and rows["p4@example.org"].attempts >= 2
    )
    assert sum(1 for m in rows.values() if m.attempts > 1) >= 3  # the first batch met the 421
    with Session(engine) as session:
        refused = session.exec(select(Contact).where(Contact.email == "p2@example.org")).one()
    assert refused.email_invalid_at is not None
    # One SMTP session per batch that reached the server (plus the reconnect after the drop).
    batches = sum(1 for outcome in outcomes if outcome.claimed)
    assert smtp_server.ehlo_count <= batches + 1


def test_no_two_messages_are_ever_accepted_and_unrecorded_at_once(
    engine: sa.Engine, settings: Settings, smtp_server: SmtpTestServer
) -> None:
    """What makes "a kill re-sends at most one message" true, checked at every acceptance.

    The backend records message k while the server reads message k+1's MAIL FROM: the
    server, on accepting a message, must find every message it accepted before recorded.
    """
    campaign = territory(engine, people=24)
    enqueue_all(engine, campaign)
    smtp_server.reply_to_rcpt("p5@example.org", "550 5.1.1 No such user")
    smtp_server.reply_to_rcpt("p9@example.org", "451 4.7.1 Greylisted, try again", times=1)
    accepted: list[str] = []
    unrecorded: list[int] = []

    def check(received: ReceivedMessage) -> None:
        accepted.append(received.message_id or "")
        with engine.connect() as connection:
            unrecorded.append(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(Message)
                    .where(
                        Message.message_id.in_(accepted),  # type: ignore[attr-defined]
                        Message.status == MessageStatus.SENDING,
                    )
                ).scalar_one()
            )

    smtp_server.watch_acceptances(check)
    backend = smtp_server.client(sender=settings.mail_from)
    send_all(engine, settings, backend, campaign, batch=24)

    assert len(accepted) == 23  # all but the refused address, the greylisted one on its retry
    assert unrecorded == [1] * 23  # only the message being accepted, never one before it
    assert {m.status for m in outbox(engine)} == {MessageStatus.SENT, MessageStatus.BOUNCED}


def test_a_template_or_campaign_problem_is_caught_before_sending(
    engine: sa.Engine, settings: Settings
) -> None:
    from synergie.mailing.campaigns import CampaignNotFound
    from synergie.messaging.rendering import TemplateProblem

    with Session(engine) as session, pytest.raises(CampaignNotFound, match="campagne inconnue"):
        find_campaign(session=session, name="Nulle part")
    composer = MailComposer(settings=settings, templates=MailTemplates(), template="inexistant")
    with pytest.raises(TemplateProblem):
        composer.preflight()


def test_the_rate_limiter_spaces_sends() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(120, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5]
    RateLimiter(None, clock=lambda: 0.0, sleep=sleep).wait()
    assert len(slept) == 3


def test_the_allowance_keeps_batches_in_flight_within_the_run_limit() -> None:
    from synergie.mailing.campaigns import BatchAllowance

    allowance = BatchAllowance(batch_size=100, concurrency=2, max_per_run=250)
    assert allowance.to_start(0) == [100, 100]
    assert allowance.to_start(2) == []
    allowance.finished(100, 100)
    assert allowance.to_start(1) == [50]  # never more than 250 in all
    allowance.finished(100, 100)
    allowance.finished(50, 30)  # the queue ran dry
    assert allowance.claimed == 230 and allowance.drained and allowance.to_start(0) == []
    assert allowance.room  # 20 more may go if retries come due
    allowance.retry()
    assert allowance.to_start(0) == [20]
