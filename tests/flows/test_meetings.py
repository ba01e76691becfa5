"""The meeting flows on the test harness: the scheduled catch-up, and the attendance form staff fill in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.flow_runs import resume_flow_run
from sqlmodel import Session, select

from flows.meeting_attendance import meeting_attendance
from flows.meeting_invitations import MeetingInvitationsParams, meeting_invitations
from flows.meeting_sync import meeting_sync
from models import Answer, Company, MeetingStatus, Message, MessageStatus, Stage, TimeEntry
from models.db import make_engine
from synergie.meetings.registrations import lock_meeting, record_answer
from synergie.settings import Settings
from tests.factories import NOW
from tests.flows.test_call_reminders import _paused_run_id
from tests.synergie.meetings.conftest import Territory, build_territory

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def invited(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Territory:
    """A meeting in the future, invited by its flow, two companies registered without any event."""
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    t = build_territory(engine, sqlite_settings, companies=4, capacity=3, per_company=1, now=NOW)
    with t.session() as session:
        t.meeting(session).starts_at = datetime.now(UTC) + timedelta(days=20)
        t.meeting(session).ends_at = datetime.now(UTC) + timedelta(days=20, hours=3)
        session.commit()
    result = meeting_invitations(MeetingInvitationsParams(meeting_id=t.meeting_id, dry_run=False))
    assert result["email_sent"] == 4
    with t.session() as session:
        lock_meeting(session, t.meeting_id)
        for company in t.companies[1:3]:
            record_answer(session=session, meeting=t.meeting(session), registration=t.registration(session, company),
                          answer=Answer.REGISTERED, people=1, note=None, contact_id=None, now=datetime.now(UTC))  # fmt: skip
        session.commit()
    return t


def test_the_scheduled_sync_confirms_answers_no_event_started_and_never_twice(
    invited: Territory,
) -> None:
    first = meeting_sync()  # as the schedule runs it: every open meeting
    assert (first["meetings"], first["confirmations"], first["email_sent"]) == (1, 2, 2)
    again = meeting_sync(meeting_id=invited.meeting_id)
    assert (again["confirmations"], again["promoted"], again.get("email_sent", 0)) == (0, 0, 0)
    with Session(invited.engine) as session:
        confirmations = [m for m in session.exec(select(Message)) if "-reponse-" in m.step]
    assert len(confirmations) == 2 and {m.status for m in confirmations} == {MessageStatus.SENT}


def test_attendance_pauses_for_the_form_listing_registered_companies(invited: Territory) -> None:
    with invited.session() as session:
        meeting = invited.meeting(session)
        meeting.starts_at = datetime.now(UTC) - timedelta(hours=3)
        meeting.ends_at = datetime.now(UTC) - timedelta(hours=1)
        session.commit()
    came, missed = invited.companies[1:3]
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(meeting_attendance(invited.meeting_id, timeout_seconds=120))
    )
    thread.start()
    run_id = _paused_run_id()
    resume_flow_run(
        run_id, run_input={f"entreprise_{came}": True, f"entreprise_{missed}": False, "by": "Anne"}
    )
    thread.join(timeout=60)
    assert results and results[0]["present"] == 1 and results[0]["absent"] == 1
    with Session(invited.engine) as session:
        assert invited.meeting(session).status == MeetingStatus.HELD
        assert session.get(Company, came).stage == Stage.PARTICIPANT  # type: ignore[union-attr]
        assert session.get(Company, missed).stage == Stage.VISITED  # type: ignore[union-attr]
        [entry] = session.exec(select(TimeEntry)).all()
        assert (entry.hours, entry.actor) == (10, "staff:Anne")


def test_the_attendance_form_lists_the_registered_companies_by_name() -> None:
    from flows.meeting_attendance import attendance_form

    form = attendance_form([{"id": 7, "name": "Tonnellerie Meunier", "siret": "73282932000074"}])
    schema = form.model_json_schema()
    assert schema["properties"]["entreprise_7"]["title"] == "Tonnellerie Meunier"
    assert "by" in schema["required"]
