"""The mailbox flow under a real (temporary) Prefect API and a real Dovecot: form default, real pass, artifact."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from sqlmodel import Session, select

from flows.mailbox import MailboxParams, mailbox
from flows.meeting_sync import meeting_sync
from models import Answer, MailboxMail, MailOutcome, MessageStatus
from models.db import make_engine
from synergie.meetings.lifecycle import invite_meeting
from synergie.settings import Settings
from tests.factories import NOW
from tests.servers.imap_server import ImapAccount
from tests.synergie.mailbox.mails import GARBAGE, client_reply, gmail_reply, out_of_office
from tests.synergie.meetings.conftest import build_territory

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def mailbox_env(
    sqlite_settings: Settings, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> ImapAccount:
    """SYNERGIE_IMAP_* pointing at the test's Dovecot mailbox, as a worker's environment would."""
    for name, value in {
        "HOST": imap_account.host, "PORT": str(imap_account.port), "SECURITY": "none",
        "USER": imap_account.user, "PASSWORD": imap_account.password,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"SYNERGIE_IMAP_{name}", value)
    imap_account.append(GARBAGE)
    imap_account.append(out_of_office(sender="p@example.org", subject="Absence : Votre entreprise"))
    return imap_account


def summary_of(flow_run_id: object) -> list[dict[str, str]]:
    with get_client(sync_client=True) as client:
        [found] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["mailbox-summary"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),  # type: ignore[list-item]
        )
    return json.loads(str(found.data))


def test_by_hand_the_form_is_a_dry_run_then_a_real_pass_files_each_mail(
    mailbox_env: ImapAccount, sqlite_settings: Settings
) -> None:
    assert MailboxParams().dry_run is True
    preview = mailbox(MailboxParams())
    assert (preview["to-review"], preview["auto-reply"]) == (1, 1)
    assert mailbox_env.folders() == {"INBOX": 2}

    state = mailbox(MailboxParams(dry_run=False), return_state=True)
    counts = state.result()
    assert (counts["to-review"], counts["auto-reply"], counts["bounced"]) == (1, 1, 0)
    folders = mailbox_env.folders()
    assert (folders["INBOX"], folders["Synergie/À traiter"]) == (0, 1)
    assert folders["Synergie/Réponses automatiques"] == 1
    summary = {row["dossier"]: row["nombre"] for row in summary_of(state.state_details.flow_run_id)}
    assert (summary["À traiter"], summary["Réponses automatiques"], summary["Rejets"]) == (
        "1",
        "1",
        "0",
    )
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        outcomes = sorted(row.outcome for row in session.exec(select(MailboxMail)))
    engine.dispose()
    assert outcomes == [MailOutcome.AUTO_REPLY, MailOutcome.TO_REVIEW]
    assert mailbox(MailboxParams(dry_run=False))["to-review"] == 0


@pytest.fixture
def sent_events() -> Iterator[Callable[[], list[Any]]]:
    """Events reaching Prefect's own asserting client, installed through its documented override."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    AssertingEventsClient.reset()
    EventsWorker.set_client_override(AssertingEventsClient)

    def sent() -> list[Any]:
        EventsWorker.drain_all()
        return [event for client in AssertingEventsClient.all for event in client.events]

    try:
        yield sent
    finally:
        EventsWorker.drain_all()
        EventsWorker.set_client_override(None)
        AssertingEventsClient.reset()


def test_a_calendar_answer_to_a_meeting_emits_the_portals_event_and_the_sync_confirms_it(
    mailbox_env: ImapAccount, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    sent_events: Callable[[], list[Any]],
) -> None:  # fmt: skip
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    t = build_territory(engine, sqlite_settings, companies=2, capacity=4, now=NOW)
    now = datetime.now(UTC)
    with t.session() as session:
        meeting = t.meeting(session)
        meeting.starts_at, meeting.ends_at = (
            now + timedelta(days=20),
            now + timedelta(days=20, hours=3),
        )
        invite_meeting(
            session=session,
            meeting=meeting,
            settings=sqlite_settings,
            templates=t.templates,
            now=now,
        )
        session.commit()
    company = t.companies[1]
    [invitation] = [m for m in t.messages("invitation-seq0") if m.company_id == company]
    [(request, _)] = invitation.context["alternatives"]  # type: ignore[index]
    ics = client_reply(base64.b64decode(request), partstat="ACCEPTED")
    mailbox_env.append(gmail_reply(sender=invitation.to_address, ics=ics))

    counts = mailbox(MailboxParams(dry_run=False))
    assert counts["replied"] == 1
    [event] = [e for e in sent_events() if e.event == "synergie.invitation.answered"]
    assert event.resource.id == f"synergie.meeting.{t.meeting_id}"
    assert (event.payload["company_id"], event.payload["answer"]) == (company, "registered")
    with t.session() as session:
        assert t.registration(session, company).status == Answer.REGISTERED
    # What the event starts (its parameters are the event's fields): the confirmation, sent.
    synced = meeting_sync(meeting_id=event.payload["meeting_id"], company_id=company,
                          contact_public_id=event.payload["contact_public_id"])  # fmt: skip
    assert synced["confirmations"] == 1  # it sends what waits too: the invitations queued above
    [confirmation] = t.messages(f"reponse-{company}-v1")
    assert confirmation.status == MessageStatus.SENT
    engine.dispose()
