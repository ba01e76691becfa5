"""The call-reminders and log-call flows under a real Prefect API, with the file outboxes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from sqlmodel import Session, col, select

from flows.call_reminders import CallRemindersParams, call_reminders
from flows.log_call import log_call_flow
from models import CallOutcome, CallTask, Message, MessageStatus, Stage, StageChange, TimeEntry
from models.db import make_engine
from synergie.calls.callers import add_caller
from synergie.settings import Settings
from tests.factories import make_company, make_contact

pytestmark = pytest.mark.usefixtures("prefect_harness")
MONDAY = date(2026, 11, 30)


def populate(settings: Settings) -> dict[str, Any]:
    """Two callers (one off on Mondays), three companies contacted ten days ago."""
    engine = make_engine(settings.db_url)
    with Session(engine, expire_on_commit=False) as session:
        companies = []
        for n in range(3):
            company = make_company(session, stage=Stage.CONTACTED, name=f"Atelier {n}")
            session.add(StageChange(company_id=company.id, from_stage=Stage.LISTED, to_stage=Stage.CONTACTED,  # type: ignore[arg-type]
                                    at=datetime(2026, 11, 20, tzinfo=UTC), why="courrier", actor="test"))  # fmt: skip
            make_contact(session, company, phone=f"060000000{n}")
            companies.append(company)
        alice = add_caller(
            session=session, name="Alice", phone="0611111111", email="alice@example.org", per_day=5
        )
        add_caller(
            session=session,
            name="Bob",
            phone="0622222222",
            email="bob@example.org",
            per_day=5,
            days=[2],
        )
        session.commit()
    engine.dispose()
    return {"companies": companies, "alice": alice}


def outbox_files(settings: Settings, kind: str) -> list[Path]:
    folder = settings.outbox_dir / kind
    return (
        sorted(folder.glob(f"*.{'eml' if kind == 'email' else 'sms'}")) if folder.exists() else []
    )


def test_reminders_send_one_sms_and_one_email_per_caller_once_a_day(
    sqlite_settings: Settings,
) -> None:
    data = populate(sqlite_settings)
    dry = call_reminders(CallRemindersParams(day=MONDAY))
    assert dry == {"callers": 1, "calls": 3}
    assert (
        outbox_files(sqlite_settings, "sms") == [] and outbox_files(sqlite_settings, "email") == []
    )

    result = call_reminders(CallRemindersParams(day=MONDAY, dry_run=False))
    assert result == {"callers": 1, "calls": 3, "enqueued": 2, "sent_sms": 1, "sent_email": 1}
    [sms] = outbox_files(sqlite_settings, "sms")
    text = sms.read_text()
    assert (
        "To: +33611111111" in text and "3 appels aujourd'hui" in text and "liste par e-mail" in text
    )
    [eml] = outbox_files(sqlite_settings, "email")
    raw = eml.read_bytes()
    assert b"alice@example.org" in raw and b"Bob" not in raw

    again = call_reminders(CallRemindersParams(day=MONDAY, dry_run=False))
    assert again == {"callers": 1, "calls": 3, "enqueued": 0, "sent_sms": 0, "sent_email": 0}
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        rows = session.exec(select(Message)).all()
        assert sorted((r.to_address, r.status) for r in rows) == [
            ("+33611111111", MessageStatus.SENT), ("alice@example.org", MessageStatus.SENT),
        ]  # fmt: skip
        assert {r.key for r in rows} == {
            f"campaign:-/step:appels-2026-11-30/caller:{data['alice'].id}/sms",
            f"campaign:-/step:appels-2026-11-30/caller:{data['alice'].id}/email",
        }
        assert len(session.exec(select(CallTask)).all()) == 3
    engine.dispose()


def _paused_run_id(timeout: float = 60.0) -> Any:
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            if runs:
                return runs[0].id
            time.sleep(0.3)
    raise AssertionError("the log-call flow never paused")


def test_log_call_waits_for_the_form_then_applies_the_outcome(sqlite_settings: Settings) -> None:
    data = populate(sqlite_settings)
    company = data["companies"][0]
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(log_call_flow(company.siret, timeout_seconds=120))
    )
    thread.start()
    run_id = _paused_run_id()
    callback_on = (datetime.now(UTC) + timedelta(days=3)).date()
    resume_flow_run(
        run_id,
        run_input={
            "outcome": "callback",
            "on": callback_on.isoformat(),
            "notes": "après 14 h",
            "by": "Anne",
        },
    )
    thread.join(timeout=60)
    assert (
        results
        and results[0]["stage"] == "called"
        and results[0]["next_call"] == callback_on.isoformat()
    )
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        closed = session.exec(select(CallTask).where(col(CallTask.outcome).is_not(None))).one()
        assert (closed.outcome, closed.notes, closed.logged_by) == (
            CallOutcome.CALLBACK,
            "après 14 h",
            "staff:Anne",
        )
        change = session.exec(select(StageChange).where(StageChange.to_stage == Stage.CALLED)).one()
        assert change.actor == "staff:Anne"
        assert len(session.exec(select(TimeEntry)).all()) == 1
    engine.dispose()
