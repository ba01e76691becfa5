"""Issue 9, item 2: a fault of ours (settings, login, relay policy) stops the run and blames nobody.

Each test reproduces a case that used to record a permanent bounce for every recipient
and mark each contact's address invalid; now the run stops with a French message, every
row waits in the queue as it was before the claim, and no contact is marked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from channels.base import EmailBackend
from models import Campaign, Channel, Contact, Message, MessageStatus
from synergie.mailing.campaigns import (
    MailComposer,
    SendPolicy,
    enqueue_recipients,
    select_recipients,
    send_batch,
)
from synergie.messaging.rendering import MailTemplates
from synergie.messaging.sending import (
    SendingStopped,
    enqueue_prepared,
    prepared_sms,
    send_prepared,
)
from synergie.messaging.transports import check_email_transport, email_backend, sms_backend
from synergie.settings import Settings, SettingsError
from tests.factories import NOW, make_company, make_contact
from tests.servers.smtp_server import SmtpTestServer, free_port
from tests.servers.twilio_server import FakeTwilio

STEP = "premier-courrier"
POLICY = SendPolicy(
    lease=timedelta(minutes=5), max_attempts=3, retry_base=timedelta(milliseconds=1), actor="test"
)
TWO_REPLY_TO = "eit@example.org, accueil@example.org"
LOGIN = ("relais", "bon-mot-de-passe")


def people(engine: sa.Engine, addresses: list[str]) -> Campaign:
    """A campaign on 21464 with one listed company and contact per address, enqueued for STEP."""
    with Session(engine) as session:
        campaign = Campaign(name="Nuits", year=2026, communes=["21464"])
        session.add(campaign)
        for n, address in enumerate(addresses):
            company = make_company(session, name=f"Entreprise {n:02d}")
            make_contact(session, company, email=address, identity=f"email:{address}")
        session.commit()
        session.refresh(campaign)
    with engine.begin() as connection:
        due = select_recipients(connection, campaign=campaign, step=STEP)
        enqueue_recipients(
            connection, due, campaign=campaign, step=STEP, domain="example.org", now=NOW
        )
    return campaign


def send_once(
    engine: sa.Engine, settings: Settings, backend: EmailBackend, campaign: Campaign
) -> Any:
    composer = MailComposer(settings=settings, templates=MailTemplates(), template=STEP)
    return send_batch(
        engine=engine, backend=backend, composer=composer, campaign_id=campaign.id, step=STEP,
        limit=50, policy=POLICY, now=lambda: datetime.now(UTC),
    )  # fmt: skip


def assert_nobody_blamed(engine: sa.Engine, waiting: int) -> None:
    """Every row queued as before the claim (no attempt counted, no lease), no contact marked."""
    with Session(engine) as session:
        rows = list(session.exec(select(Message)))
        contacts = list(session.exec(select(Contact)))
    assert len(rows) == waiting
    assert {(m.status, m.attempts, m.lease_until) for m in rows} == {
        (MessageStatus.QUEUED, 0, None)
    }
    assert [c for c in contacts if c.email_invalid_at or c.phone_invalid_at] == []


ADDRESSES = ["claire@cartonnages.example", "paul@menuiserie.example", "anne@ateliers.example",
             "marc@garage.example", "lea@fromagerie.example"]  # fmt: skip


@pytest.mark.parametrize(
    ("backend_name", "changes"),
    [
        ("file", {"reply_to": TWO_REPLY_TO}),
        ("memory", {"reply_to": TWO_REPLY_TO}),
        ("file", {"mail_from": "Économie positive"}),  # no address at all
    ],
)
def test_a_from_or_reply_to_typo_stops_the_run_and_marks_nobody(
    engine: sa.Engine, settings: Settings, backend_name: str, changes: dict[str, str]
) -> None:
    campaign = people(engine, ADDRESSES)
    broken = settings.model_copy(update={"email_backend": backend_name, **changes})

    with pytest.raises(SendingStopped, match="Aucun destinataire n'a été marqué") as stopped:
        send_once(engine, broken, email_backend(broken, password=None), campaign)

    assert stopped.value.requeued == len(ADDRESSES)
    assert_nobody_blamed(engine, len(ADDRESSES))
    assert list(settings.outbox_dir.glob("**/*.eml")) == []
    # Fixed, the next run sends everything, each once.
    fixed = send_once(engine, settings, email_backend(settings, password=None), campaign)
    assert fixed.statuses[MessageStatus.SENT] == len(ADDRESSES)


@pytest.fixture
def auth_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer(credentials=LOGIN) as server:
        yield server


def smtp_settings(settings: Settings, server: SmtpTestServer, **changes: Any) -> Settings:
    values = {"email_backend": "smtp", "smtp_host": server.host, "smtp_port": server.port,
              "smtp_security": "none", "smtp_timeout": 5, **changes}  # fmt: skip
    return settings.model_copy(update=values)


@pytest.mark.parametrize(
    "fault",
    ["refused-login", "mail-from-550", "relay-denied", "postfix-relay-access", "same-refusal"],
)
def test_a_relay_that_refuses_us_stops_the_run_and_marks_nobody(
    engine: sa.Engine, settings: Settings, auth_server: SmtpTestServer, fault: str
) -> None:
    campaign = people(engine, ADDRESSES)
    if fault == "refused-login":
        auth_server.refuse_logins()
    elif fault == "mail-from-550":
        auth_server.refuse_mail_from("550 5.7.1 Sender address not allowed for this account")
    elif fault == "relay-denied":
        auth_server.refuse_every_rcpt("550 relay denied")
    elif fault == "postfix-relay-access":
        auth_server.refuse_every_rcpt("554 5.7.1 Relay access denied")
    else:  # a wording we do not know, but the same for every recipient: the relay's policy
        auth_server.refuse_every_rcpt("550 5.7.1 Message rejected by policy")
    configured = smtp_settings(settings, auth_server, smtp_user=LOGIN[0])

    with pytest.raises(SendingStopped, match="aucun destinataire|Aucun destinataire"):
        send_once(engine, configured, email_backend(configured, password=LOGIN[1]), campaign)

    assert_nobody_blamed(engine, len(ADDRESSES))
    assert auth_server.messages == []


def test_one_refused_recipient_is_still_marked_and_the_run_goes_on(
    engine: sa.Engine, settings: Settings, smtp_server: SmtpTestServer
) -> None:
    campaign = people(engine, ADDRESSES)
    smtp_server.reply_to_rcpt(ADDRESSES[1], "550 5.1.1 <paul@menuiserie.example>: User unknown")
    # Twice the same wording, for two people in a row: still about each of them.
    smtp_server.reply_to_rcpt(ADDRESSES[3], "550 5.7.1 Message rejected by policy")
    smtp_server.reply_to_rcpt(ADDRESSES[4], "550 5.7.1 Message rejected by policy")
    configured = smtp_settings(settings, smtp_server)

    outcome = send_once(engine, configured, email_backend(configured, password=None), campaign)

    assert (outcome.statuses[MessageStatus.SENT], outcome.statuses[MessageStatus.BOUNCED]) == (2, 3)
    with Session(engine) as session:
        marked = sorted(c.email for c in session.exec(select(Contact)) if c.email_invalid_at)
    assert marked == sorted(ADDRESSES[i] for i in (1, 3, 4))


def test_three_stale_addresses_of_one_company_are_each_marked(
    engine: sa.Engine, settings: Settings, smtp_server: SmtpTestServer
) -> None:
    # The same wording three times in a row, but one domain: a company's departed staff,
    # not the relay's policy.
    stale = [f"ancien{n}@cartonnages.example" for n in range(3)]
    campaign = people(engine, [*stale, "claire@cartonnages.example"])
    for address in stale:
        smtp_server.reply_to_rcpt(address, f"550 5.1.1 <{address}>: User unknown")
    configured = smtp_settings(settings, smtp_server)

    outcome = send_once(engine, configured, email_backend(configured, password=None), campaign)

    assert outcome.statuses[MessageStatus.BOUNCED] == 3
    with Session(engine) as session:
        marked = sorted(c.email for c in session.exec(select(Contact)) if c.email_invalid_at)
    assert marked == sorted(stale)


def test_a_twilio_authentication_error_marks_no_phone_invalid(
    engine: sa.Engine, tmp_path: Path
) -> None:
    numbers = ["+33639981001", "+33639981002", "+33639981003"]
    with Session(engine) as session:
        company = make_company(session)
        ids = [make_contact(session, company, phone=n, identity=f"phone:{n}").id for n in numbers]
        session.commit()
    with engine.begin() as connection:
        for contact_id, number in zip(ids, numbers, strict=True):
            enqueue_prepared(connection, step="rappel", recipient=f"contact:{contact_id}", channel=Channel.SMS,
                             to_address=number, content=prepared_sms("Rappel"), domain="example.org",
                             now=NOW, contact_id=contact_id)  # fmt: skip
    with FakeTwilio() as server:
        settings = Settings(data_dir=tmp_path, sms_backend="twilio", twilio_account_sid=server.account_sid,
                            twilio_from="+33639980000", twilio_api_url=server.url)  # fmt: skip
        wrong_token = sms_backend(settings, auth_token="ce-n-est-pas-le-jeton")  # Twilio 20003
        with pytest.raises(SendingStopped, match="20003"):
            send_prepared(engine=engine, backend=wrong_token, channel=Channel.SMS, limit=10,
                          policy=POLICY, now=lambda: datetime.now(UTC))  # fmt: skip
        assert server.messages == []
        assert_nobody_blamed(engine, len(numbers))
        right_token = sms_backend(settings, auth_token=server.auth_token)
        outcome = send_prepared(engine=engine, backend=right_token, channel=Channel.SMS, limit=10,
                                policy=POLICY, now=lambda: datetime.now(UTC))  # fmt: skip
        assert sorted(m["to"] for m in server.messages) == numbers
    assert outcome.statuses[MessageStatus.SENT] == len(numbers)


# The preflight: the same faults, caught before anything is claimed.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reply_to": TWO_REPLY_TO}, "SYNERGIE_REPLY_TO doit être une seule adresse"),
        ({"mail_from": "Économie positive"}, "SYNERGIE_MAIL_FROM doit être une seule adresse"),
    ],
)
def test_the_preflight_refuses_a_from_or_reply_to_typo_in_french(
    sqlite_settings: Settings, changes: dict[str, str], message: str
) -> None:
    broken = sqlite_settings.model_copy(update=changes)  # the file backend, the default
    with pytest.raises(SettingsError, match=message):
        check_email_transport(broken, password=None)


def test_the_preflight_refuses_a_template_header_that_cannot_be_composed(
    sqlite_settings: Settings,
) -> None:
    composer = MailComposer(settings=sqlite_settings, templates=MailTemplates(), template=STEP)
    sample = composer.preflight()
    bad = type(sample)(**{**{f: getattr(sample, f) for f in sample.__slots__},  # type: ignore[attr-defined]
                          "headers": {"Subject": "deux fois"}})  # fmt: skip
    with pytest.raises(SettingsError, match="message d'essai ne peut pas être composé"):
        check_email_transport(sqlite_settings, password=None, sample=bad)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("refused-login", "refuse nos envois"),
        ("wrong-password", "refuse nos envois"),
        ("mail-from-550", "refuse nos envois"),
        ("unreachable", "ne répond pas"),
    ],
)
def test_the_preflight_opens_the_smtp_session_and_tries_mail_from(
    sqlite_settings: Settings, auth_server: SmtpTestServer, fault: str, message: str
) -> None:
    password = LOGIN[1]
    configured = smtp_settings(sqlite_settings, auth_server, smtp_user=LOGIN[0])
    assert check_email_transport(configured, password=password) is None  # all is well
    assert auth_server.logins == [LOGIN[0]] and auth_server.messages == []
    if fault == "refused-login":
        auth_server.refuse_logins()
    elif fault == "wrong-password":
        password = "mauvais"
    elif fault == "mail-from-550":
        auth_server.refuse_mail_from("550 5.7.1 Sender not allowed")
    else:
        configured = configured.model_copy(update={"smtp_port": free_port()})
    with pytest.raises(SettingsError, match=message):
        check_email_transport(configured, password=password)
