"""Call reminders without Prefect: callers, sharing calls, digests, and what each outcome does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import (
    Activity,
    Caller,
    CallOutcome,
    CallTask,
    Channel,
    Company,
    Message,
    MessageStatus,
    OptOut,
    Stage,
    StageChange,
    TimeEntry,
)
from models.companies import move_company, take_back_move
from synergie.calls.callers import CallError, add_caller, parse_days
from synergie.calls.lists import (
    assign_calls,
    caller_digest,
    companies_due_for_call,
    next_working_day,
    todays_calls,
)
from synergie.calls.outcomes import log_call
from synergie.messaging.rendering import MailTemplates, SmsTemplates, programme_context
from synergie.settings import Settings
from tests.factories import make_company, make_contact

MONDAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def contacted(
    session: Session, days_ago: int, *, phone: str = "0601020304", **fields: object
) -> Company:
    """A company moved to ``contacted`` ``days_ago`` days before NOW, with a callable contact."""
    company = make_company(session, stage=Stage.CONTACTED, **fields)
    session.add(
        StageChange(company_id=company.id, from_stage=Stage.LISTED, to_stage=Stage.CONTACTED,  # type: ignore[arg-type]
                    at=NOW - timedelta(days=days_ago), why="courrier", actor="test")
    )  # fmt: skip
    make_contact(session, company, phone=phone)
    session.flush()
    return company


def caller(
    session: Session, name: str = "Alice", per_day: int = 5, days: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> Caller:
    return add_caller(session=session, name=name, phone="0611111111", email=f"{name.lower()}@example.org",
                      per_day=per_day, days=days)  # fmt: skip


def assign(session: Session, day: date = MONDAY, after_days: int = 7) -> dict[int, list[CallTask]]:
    return assign_calls(session=session, today=day, after_days=after_days, now=NOW)


def stages(session: Session, company: Company) -> list[tuple[Stage, Stage, str]]:
    rows = session.exec(
        select(StageChange)
        .where(StageChange.company_id == company.id)
        .order_by(col(StageChange.id))
    ).all()
    return [(Stage(r.from_stage), Stage(r.to_stage), r.actor) for r in rows][
        1:
    ]  # minus the factory's


def test_add_caller_refuses_bad_values_in_french(engine: sa.Engine) -> None:
    with Session(engine) as session:
        with pytest.raises(CallError, match="jours invalides"):
            add_caller(session=session, name="A", phone="06", email=None, per_day=3, days=[0, 8])
        with pytest.raises(CallError, match="téléphone"):
            add_caller(session=session, name="A", phone=None, email=None, per_day=3)
        with pytest.raises(CallError, match="jours invalides"):
            parse_days("lundi")
        made = add_caller(session=session, name=" Alice ", phone="06 11 11 11 11", email=None,
                          per_day=3, days=parse_days("3,1,1"))  # fmt: skip
        assert (made.name, made.phone, made.days_available) == ("Alice", "+33611111111", [1, 3])


def test_only_companies_contacted_long_enough_with_a_usable_phone_are_due(
    engine: sa.Engine,
) -> None:
    with Session(engine) as session:
        old = contacted(session, 10)
        exactly = contacted(session, 7)
        contacted(session, 3)  # too recent
        invalid = contacted(session, 12)
        invalid_contact = session.exec(select(OptOut)).first()  # none yet
        assert invalid_contact is None
        from models import Contact

        bad = session.exec(select(Contact).where(Contact.company_id == invalid.id)).one()
        bad.phone_invalid_at = NOW
        opted = contacted(session, 12)
        opted_contact = session.exec(select(Contact).where(Contact.company_id == opted.id)).one()
        session.add(
            OptOut(contact_id=opted_contact.id, channel=Channel.EMAIL, at=NOW, source="lien")
        )  # type: ignore[arg-type]
        contacted(session, 12, phone="")  # no phone at all
        declined = contacted(session, 20)
        declined.stage = Stage.DECLINED
        session.flush()
        due = companies_due_for_call(session=session, today=MONDAY, after_days=7)
        assert [company.id for company, _ in due] == [old.id, exactly.id]


def test_calls_are_shared_within_capacity_and_availability(engine: sa.Engine) -> None:
    with Session(engine) as session:
        companies = [contacted(session, 30 - n) for n in range(7)]
        alice = caller(session, "Alice", per_day=2)
        bob = caller(session, "Bob", per_day=3)
        caller(session, "Weekend", per_day=10, days=(6, 7))
        assigned = assign(session)
        assert {k: len(v) for k, v in assigned.items()} == {alice.id: 2, bob.id: 3}
        # Oldest contacted first: the five oldest are on today's lists, the two newest wait.
        chosen = {task.company_id for tasks in assigned.values() for task in tasks}
        assert chosen == {c.id for c in companies[:5]}
        assert all(
            t.assigned_on == MONDAY and t.due_on == MONDAY for ts in assigned.values() for t in ts
        )
        # Idempotent: a second run the same day assigns nothing new and moves nothing.
        assert assign(session) == {}
        assert {k: len(v) for k, v in todays_calls(session=session, today=MONDAY).items()} == {
            alice.id: 2, bob.id: 3,
        }  # fmt: skip
        # The next day, unlogged calls roll over before the two waiting companies.
        tuesday = assign(session, MONDAY + timedelta(days=1))
        assert sum(len(v) for v in tuesday.values()) == 5
        assert companies[5].id not in {t.company_id for ts in tuesday.values() for t in ts}


def test_nobody_gets_anything_without_calls_or_callers(engine: sa.Engine) -> None:
    with Session(engine) as session:
        caller(session)
        assert assign(session) == {}
        assert todays_calls(session=session, today=MONDAY) == {}
        contacted(session, 10)
        assert assign(session, MONDAY + timedelta(days=5)) == {}  # Saturday: nobody works
        assert session.exec(select(CallTask)).all() == []


def test_callbacks_due_today_come_first(engine: sa.Engine) -> None:
    with Session(engine) as session:
        first = contacted(session, 30)
        later = contacted(session, 20)
        log_call(session=session, company=later, outcome=CallOutcome.CALLBACK, on=MONDAY,
                 notes="rappeler lundi", actor="staff:anne", now=NOW - timedelta(days=3), call_minutes=15)  # fmt: skip
        solo = caller(session, per_day=1)
        assigned = assign(session)
        assert [t.company_id for t in assigned[solo.id]] == [later.id]
        assert first.id not in {t.company_id for t in assigned[solo.id]}


def test_digest_lists_company_contact_phone_and_what_was_sent(
    engine: sa.Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        company = contacted(session, 10, name="Scierie Fictive", commune="Nuits-Saint-Georges")
        session.add(Message(key="k1", step="premier-courrier", channel=Channel.EMAIL, company_id=company.id,
                            to_address="x@example.org", message_id="<1@x>", status=MessageStatus.SENT,
                            next_attempt_at=NOW, sent_at=datetime(2026, 11, 2, 9, tzinfo=UTC)))  # fmt: skip
        alice = caller(session)
        assign(session)
        tasks = todays_calls(session=session, today=MONDAY)[alice.id]
        digest = caller_digest(
            session=session, caller=alice, tasks=tasks, today=MONDAY, programme=programme_context(settings),
            mail_templates=MailTemplates(), sms_templates=SmsTemplates(),
        )  # fmt: skip
        assert digest is not None
        assert "1 appel aujourd'hui" in digest.sms and "liste par e-mail" in digest.sms
        assert digest.email.subject.startswith("1 appel à passer le 30/11/2026")
        assert digest.email.text.startswith("Bonjour Alice,")  # the subject is not in the body
        for part in (digest.email.text, digest.email.html):
            assert "Scierie Fictive" in part and "0601020304" in part
            assert "premier-courrier" in part and "02/11/2026" in part
            assert "Proposer une rencontre" in part
        assert caller_digest(session=session, caller=alice, tasks=[], today=MONDAY, programme={},
                             mail_templates=MailTemplates(), sms_templates=SmsTemplates()) is None  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "stage"),
    [
        (CallOutcome.REACHED, Stage.CALLED),
        (CallOutcome.INTERESTED, Stage.CALLED),
        (CallOutcome.REFUSED, Stage.DECLINED),
    ],
)
def test_outcomes_move_the_company_and_book_time(
    engine: sa.Engine, outcome: CallOutcome, stage: Stage
) -> None:
    with Session(engine) as session:
        company = contacted(session, 10)
        caller(session)
        assign(session)
        logged = log_call(session=session, company=company, outcome=outcome, on=None, notes=" ok ",
                          actor="staff:anne", now=NOW, call_minutes=15)  # fmt: skip
        assert logged.stage == stage and logged.next_task is None
        assert (logged.task.outcome, logged.task.notes, logged.task.logged_by) == (
            outcome,
            "ok",
            "staff:anne",
        )
        assert stages(session, company) == [(Stage.CONTACTED, stage, "staff:anne")]
        entry = session.exec(select(TimeEntry)).one()
        assert (entry.activity, entry.hours, entry.company_id, entry.day) == (
            Activity.CALL,
            0.25,
            company.id,
            MONDAY,
        )
        assert session.exec(select(CallTask).where(col(CallTask.outcome).is_(None))).all() == []


def test_callback_needs_a_date_and_makes_a_task_on_it(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = contacted(session, 10)
        with pytest.raises(CallError, match="--on"):
            log_call(session=session, company=company, outcome=CallOutcome.CALLBACK, on=None,
                     notes=None, actor="staff:anne", now=NOW, call_minutes=15)  # fmt: skip
        when = date(2026, 12, 3)
        logged = log_call(session=session, company=company, outcome=CallOutcome.CALLBACK, on=when,
                          notes=None, actor="staff:anne", now=NOW, call_minutes=15)  # fmt: skip
        assert logged.stage == Stage.CALLED and logged.task.callback_on == when
        assert logged.next_task is not None and logged.next_task.due_on == when
        # A callback on a company already at "called" keeps it there, with a new task.
        again = log_call(session=session, company=company, outcome=CallOutcome.CALLBACK, on=date(2026, 12, 10),
                         notes=None, actor="staff:anne", now=NOW, call_minutes=15)  # fmt: skip
        assert again.stage == Stage.CALLED and again.task.id == logged.next_task.id
        assert len(stages(session, company)) == 1


def test_wrong_number_marks_the_phone_and_keeps_the_stage(engine: sa.Engine) -> None:
    from models import Contact

    with Session(engine) as session:
        company = contacted(session, 10)
        caller(session)
        assign(session)
        logged = log_call(session=session, company=company, outcome=CallOutcome.WRONG_NUMBER, on=None,
                          notes=None, actor="staff:anne", now=NOW, call_minutes=15)  # fmt: skip
        assert logged.stage == Stage.CONTACTED and stages(session, company) == []
        contact = session.exec(select(Contact).where(Contact.company_id == company.id)).one()
        assert contact.phone_invalid_at == NOW
        # With no other phone, the company is not put on a list again.
        assert assign(session, MONDAY + timedelta(days=1)) == {}


def test_third_no_answer_makes_the_company_unreachable(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = contacted(session, 10)
        friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
        first = log_call(session=session, company=company, outcome=CallOutcome.NO_ANSWER, on=None,
                         notes=None, actor="staff:anne", now=friday, call_minutes=15)  # fmt: skip
        assert first.next_task is not None
        assert (first.next_task.attempt, first.next_task.due_on) == (
            2,
            date(2026, 12, 7),
        )  # next Monday
        second = log_call(session=session, company=company, outcome=CallOutcome.NO_ANSWER, on=None,
                          notes=None, actor="staff:anne", now=friday, call_minutes=15)  # fmt: skip
        assert second.stage == Stage.CONTACTED and second.next_task is not None
        third = log_call(session=session, company=company, outcome=CallOutcome.NO_ANSWER, on=None,
                         notes=None, actor="flow-run:x", now=friday, call_minutes=15)  # fmt: skip
        assert third.stage == Stage.UNREACHABLE and third.next_task is None
        assert stages(session, company) == [(Stage.CONTACTED, Stage.UNREACHABLE, "flow-run:x")]
        assert len(session.exec(select(TimeEntry)).all()) == 3
        with pytest.raises(CallError, match="injoignable|unreachable"):
            log_call(session=session, company=company, outcome=CallOutcome.REACHED, on=None,
                     notes=None, actor="staff:anne", now=friday, call_minutes=15)  # fmt: skip


def test_next_working_day_skips_the_weekend() -> None:
    assert next_working_day(date(2026, 12, 4)) == date(2026, 12, 7)
    assert next_working_day(date(2026, 11, 30)) == date(2026, 12, 1)


def test_an_opt_out_after_assignment_takes_the_call_off_the_digest(engine: sa.Engine) -> None:
    from synergie.messaging.optouts import suppress

    with Session(engine) as session:
        kept = contacted(session, 10, phone="+33601020304")
        refusing = contacted(session, 9, phone="+33601020305")
        alice = caller(session)
        assert {t.company_id for t in assign(session)[alice.id]} == {kept.id, refusing.id}
        # The person phones the officer in the morning: staff record it, for calls.
        suppress(session.connection(), address="06 01 02 03 05", channel="phone",
                 source="staff", now=NOW, actor="staff:test")  # fmt: skip
        assert [t.company_id for t in todays_calls(session=session, today=MONDAY)[alice.id]] == [
            kept.id
        ]
        # Nor is the call handed out again the next day, when unlogged calls roll over.
        tuesday = assign(session, MONDAY + timedelta(days=1))
        assert [t.company_id for ts in tuesday.values() for t in ts] == [kept.id]


def test_a_move_taken_back_does_not_restart_the_wait_before_the_first_call(
    engine: sa.Engine,
) -> None:
    with Session(engine) as session:
        company = contacted(session, 10)
        # Staff moved it to "called" by mistake, then took it back today.
        move = move_company(session=session, company=company, target=Stage.CALLED,
                            why="erreur", actor="staff:test", now=NOW)  # fmt: skip
        take_back_move(session=session, company=company, change=move, why="pas encore appelée",
                       actor="staff:test", now=NOW + timedelta(minutes=1))  # fmt: skip
        assert Stage(company.stage) == Stage.CONTACTED
        due = companies_due_for_call(session=session, today=MONDAY, after_days=7)
        assert [c.id for c, _ in due] == [company.id]  # contacted 10 days ago, not today
        rows = session.exec(select(StageChange).where(StageChange.company_id == company.id)).all()
        assert [r.why for r in rows] == ["courrier", "erreur", "correction : pas encore appelée"]
