"""Answers at the same instant never overbook a meeting (SQLite and PostgreSQL), and the test can tell."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from models import Answer, Registration
from models.db import write_transaction
from synergie.meetings import registrations
from synergie.meetings.lifecycle import invite_meeting
from tests.factories import NOW
from tests.synergie.meetings.conftest import Territory

CAPACITY = 3
COMPANIES = 8


def answer_all_at_once(t: Territory) -> list[BaseException]:
    """Every invited company answers « je viens » (1 person) from its own thread, released together."""
    barrier = threading.Barrier(COMPANIES - 1)
    errors: list[BaseException] = []

    def one(company_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            with write_transaction(t.engine) as connection:
                session = Session(bind=connection, expire_on_commit=False)
                registrations.lock_meeting(
                    session, t.meeting_id
                )  # looked up now: the test may remove it
                registrations.record_answer(
                    session=session, meeting=t.meeting(session), registration=t.registration(session, company_id),
                    answer=Answer.REGISTERED, people=1, note=None, contact_id=None, now=NOW,
                )  # fmt: skip
                session.flush()
        except BaseException as exc:  # noqa: BLE001 (reported to the test)
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,)) for c in t.companies[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def registered(t: Territory) -> int:
    with Session(t.engine) as session:
        rows = session.exec(
            select(Registration).where(
                Registration.meeting_id == t.meeting_id, Registration.status == Answer.REGISTERED
            )
        ).all()
        return sum(r.people for r in rows)


@pytest.fixture
def crowded(make_territory: Callable[..., Territory], monkeypatch: pytest.MonkeyPatch) -> Territory:
    t = make_territory(companies=COMPANIES, capacity=CAPACITY, per_company=1)
    with t.session() as session:
        invite_meeting(
            session=session,
            meeting=t.meeting(session),
            settings=t.settings,
            templates=t.templates,
            now=NOW,
        )
        session.commit()
    counted = registrations.registered_people

    def slow_count(session: Session, meeting_id: int) -> int:
        # Widens the window between reading the seats left and taking one, so that without
        # the lock the race is certain rather than likely.
        value = counted(session, meeting_id)
        time.sleep(0.2)
        return value

    monkeypatch.setattr(registrations, "registered_people", slow_count)
    return t


def test_simultaneous_answers_fill_the_meeting_and_queue_the_rest_in_order(
    crowded: Territory,
) -> None:
    assert answer_all_at_once(crowded) == []
    assert registered(crowded) == CAPACITY
    with Session(crowded.engine) as session:
        waiting = session.exec(
            select(Registration).where(
                Registration.meeting_id == crowded.meeting_id, Registration.status == Answer.WAITING
            )
        ).all()
        positions = sorted(registrations.waiting_position(session, r) for r in waiting)  # type: ignore[type-var]
    assert positions == list(range(1, COMPANIES - 1 - CAPACITY + 1))


def test_without_the_lock_the_same_answers_overbook_or_fail(
    crowded: Territory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proves the test above can fail: with the lock removed, the meeting is overbooked
    # (PostgreSQL, SQLite reads outside the write lock) or answers fail.
    monkeypatch.setattr(registrations, "lock_meeting", lambda session, meeting_id: None)
    errors = answer_all_at_once(crowded)
    assert errors or registered(crowded) > CAPACITY
