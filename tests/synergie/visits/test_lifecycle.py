"""Visits as plain functions on SQLite and PostgreSQL: booking, invitations, replies, closing, reminders."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from icalendar import Calendar
from sqlmodel import Session, col, select

from models import (
    Activity,
    CallOutcome,
    CallTask,
    Channel,
    Company,
    Contact,
    Message,
    OptOut,
    Partstat,
    Stage,
    StageChange,
    TimeEntry,
    Visit,
    VisitStatus,
)
from models.db import session_scope
from synergie.messaging.rendering import MailTemplates, SmsTemplates
from synergie.settings import Settings
from synergie.visits.diary import BookingConflict
from synergie.visits.lifecycle import (
    VisitError,
    add_staff,
    book_interested,
    book_visit,
    cancel_visit,
    close_visit,
    due_reminders,
    enqueue_reminders,
    interested_companies,
    propose,
    record_reply,
    reschedule_visit,
)
from tests.factories import NOW, make_company, make_interested_company

# NOW is Monday 2 November 2026, 10:30 in Paris; two working days' notice: Wednesday 4.
FIRST_VISIT = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)  # 10:00 in Paris, preparation from 9:00


@pytest.fixture
def templates() -> MailTemplates:
    return MailTemplates()


def with_staff(session: Session) -> None:
    add_staff(session=session, name="Claire Martin", email="claire@example.org", phone="0612345678")


def invitations(session: Session) -> list[Message]:
    return list(
        session.exec(
            select(Message).where(Message.channel == Channel.EMAIL).order_by(col(Message.id))
        )
    )


def calendar_of(message: Message) -> Calendar:
    content, ctype = message.context["alternatives"][0]  # type: ignore[index]
    attachment = message.context["attachments"][0]  # type: ignore[index]
    assert attachment[0].endswith(".ics") and attachment[2] == "application/ics"
    document = Calendar.from_ical(base64.b64decode(content))
    assert ctype.startswith(f"text/calendar; method={document['METHOD']}")
    return document


def book_all(engine: sa.Engine, settings: Settings, templates: MailTemplates, now: datetime = NOW):
    with session_scope(engine) as session:
        return book_interested(
            session=session, settings=settings, templates=templates, now=now, actor="test"
        )


def test_booking_moves_the_stage_and_queues_one_parsable_invitation(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(
            session, address="3 rue des Vignes", commune="Nuits-Saint-Georges"
        )
        make_company(session, stage=Stage.CALLED)  # called, but no interested call
    booked = book_all(engine, settings, templates)
    assert [b.company for b in booked] == [company.name] and booked[0].enqueued
    with Session(engine) as session:
        visit = session.exec(select(Visit)).one()
        assert visit.starts_at == FIRST_VISIT
        assert visit.reserved_start == FIRST_VISIT - timedelta(hours=1)
        assert session.get(Company, company.id).stage == Stage.VISIT_SCHEDULED  # type: ignore[union-attr]
        change = session.exec(select(StageChange)).one()
        assert (change.from_stage, change.to_stage) == (Stage.CALLED, Stage.VISIT_SCHEDULED)
        [message] = invitations(session)
        assert message.step == f"visite-{visit.uid}-seq0"
        assert message.key.endswith(f"/contact:{visit.contact_id}/email")
        assert "Visite de" in message.context["subject"]  # type: ignore[index]
        assert "mercredi 4 novembre 2026 à 10 h 00" in message.context["text"]  # type: ignore[index]
        document = calendar_of(message)
        event = document.events[0]
        assert str(document["METHOD"]) == "REQUEST"
        assert (str(event["UID"]), event.sequence) == (visit.uid, 0)
        assert event.start.astimezone(UTC) == FIRST_VISIT
    # A second run books nothing twice and queues nothing new.
    assert book_all(engine, settings, templates) == []
    with Session(engine) as session:
        assert len(session.exec(select(Visit)).all()) == 1
        assert len(invitations(session)) == 1


def test_two_companies_get_two_distinct_slots_and_proposals_skip_them(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        make_interested_company(session)
        make_interested_company(session)
    booked = book_all(engine, settings, templates)
    starts = sorted(b.visit.starts_at for b in booked)
    assert starts[0] == FIRST_VISIT and starts[1] >= FIRST_VISIT + timedelta(hours=2, minutes=30)
    with Session(engine) as session:
        slots = propose(session=session, settings=settings, now=NOW)
    assert len(slots) == 3 and not {s.visit_start for s in slots} & set(starts)


def test_chosen_slot_is_checked(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(session)
        saturday = datetime(2026, 11, 7, 10, 0, tzinfo=UTC)
        with pytest.raises(BookingConflict, match="week-end"):
            book_visit(session=session, settings=settings, templates=templates, company=company,
                       now=NOW, actor="test", visit_start=saturday)  # fmt: skip
    with session_scope(engine) as session:
        company = session.get(Company, company.id)  # type: ignore[assignment]
        chosen = datetime(2026, 11, 5, 14, 0, tzinfo=UTC)  # Thursday 15:00 in Paris
        result = book_visit(session=session, settings=settings, templates=templates,
                            company=company, now=NOW, actor="test", visit_start=chosen)  # fmt: skip
        assert result.visit.starts_at == chosen


def test_reschedule_keeps_the_uid_and_increments_the_sequence(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        make_interested_company(session)
    book_all(engine, settings, templates)
    with session_scope(engine) as session:
        visit = session.exec(select(Visit)).one()
        uid = visit.uid
        moved = reschedule_visit(session=session, settings=settings, templates=templates,
                                 visit=visit, now=NOW, actor="test")  # fmt: skip
        assert moved.visit.starts_at != FIRST_VISIT and moved.enqueued
    with Session(engine) as session:
        first, second = invitations(session)
        assert second.step == f"visite-{uid}-seq1"
        event = calendar_of(second).events[0]
        assert str(calendar_of(second)["METHOD"]) == "REQUEST"
        assert (str(event["UID"]), event.sequence) == (uid, 1)
        assert "Nouvel horaire" in second.context["subject"]  # type: ignore[index]
        assert session.exec(select(Visit)).one().sequence == 1


def test_cancel_sends_cancel_with_a_higher_sequence_and_moves_back(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(session)
    book_all(engine, settings, templates)
    with session_scope(engine) as session:
        visit = session.exec(select(Visit)).one()
        cancel_visit(session=session, settings=settings, templates=templates, visit=visit,
                     now=NOW, actor="test")  # fmt: skip
    with Session(engine) as session:
        visit = session.exec(select(Visit)).one()
        assert (visit.status, visit.sequence) == (VisitStatus.CANCELLED, 1)
        assert session.get(Company, company.id).stage == Stage.CALLED  # type: ignore[union-attr]
        cancel = invitations(session)[-1]
        document = calendar_of(cancel)
        assert str(document["METHOD"]) == "CANCEL"
        assert document.events[0].sequence == 1 and str(document.events[0]["UID"]) == visit.uid
        assert cancel.context["subject"].startswith("Visite annulée")  # type: ignore[index]
    # Back at ``called`` and still interested: the next run books it again.
    assert len(book_all(engine, settings, templates)) == 1


def reply(uid: str, partstat: str, sequence: int = 0, *, attendee: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//FR\r\nMETHOD:REPLY\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:{sequence}\r\nDTSTAMP:20261103T080000Z\r\n"
        "DTSTART:20261104T090000Z\r\nORGANIZER:mailto:claire@example.org\r\n"
        f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def test_accepted_then_declined_reply_frees_the_slot(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(session)
    book_all(engine, settings, templates)
    with session_scope(engine) as session:
        visit = session.exec(select(Visit)).one()
        uid, invitee = visit.uid, session.get(Contact, visit.contact_id).email  # type: ignore[union-attr]
        outcome = record_reply(session=session, settings=settings, templates=templates,
                               data=reply(uid, "ACCEPTED", attendee=invitee), now=NOW, actor="test")  # fmt: skip
        assert outcome.partstat == Partstat.ACCEPTED and not outcome.cancelled
    with session_scope(engine) as session:
        outcome = record_reply(session=session, settings=settings, templates=templates,
                               data=reply(uid, "DECLINED", attendee=invitee), now=NOW, actor="test")  # fmt: skip
        assert outcome.cancelled
    with Session(engine) as session:
        visit = session.exec(select(Visit)).one()
        assert (visit.status, visit.partstat) == (VisitStatus.CANCELLED, Partstat.DECLINED)
        assert session.get(Company, company.id).stage == Stage.CALLED  # type: ignore[union-attr]
        assert len(invitations(session)) == 1  # no CANCEL for a visit the company declined
    with session_scope(engine) as session:
        other = make_interested_company(session)
    booked = book_all(engine, settings, templates)
    by_company = {b.visit.company_id: b.visit.starts_at for b in booked}
    assert FIRST_VISIT in by_company.values() and other.id in by_company


def test_a_declined_reply_from_a_stranger_no_longer_frees_the_slot(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    # Issue 9, item 7, as reproduced: UIDs were visite-1@…, and any ATTENDEE was believed.
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(session)
    [booked] = book_all(engine, settings, templates)
    assert booked.visit.uid != "visite-1@example.org" and "visite-1@" not in booked.visit.uid
    forged = reply(booked.visit.uid, "DECLINED", attendee="stranger@example.net")
    with (
        session_scope(engine) as session,
        pytest.raises(VisitError, match="n'est pas la personne invitée"),
    ):
        record_reply(session=session, settings=settings, templates=templates, data=forged,
                     now=NOW, actor="test")  # fmt: skip
    with Session(engine) as session:
        visit = session.exec(select(Visit)).one()
        assert (visit.status, visit.partstat) == (VisitStatus.BOOKED, Partstat.NEEDS_ACTION)
        assert session.get(Company, company.id).stage == Stage.VISIT_SCHEDULED  # type: ignore[union-attr]
    # The slot is still taken: the next interested company gets another one.
    with session_scope(engine) as session:
        make_interested_company(session)
    [other] = book_all(engine, settings, templates)
    assert other.visit.starts_at != booked.visit.starts_at


def test_done_moves_to_visited_and_logs_two_hours(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        company = make_interested_company(session)
    book_all(engine, settings, templates)
    with session_scope(engine) as session:
        visit = session.exec(select(Visit)).one()
        close_visit(session=session, visit=visit, notes="Palettes à céder", now=NOW, actor="test")
    with Session(engine) as session:
        entry = session.exec(select(TimeEntry)).one()
        assert (entry.activity, entry.hours, entry.company_id) == (Activity.VISIT, 2.0, company.id)
        assert entry.day == date(2026, 11, 4)
        assert session.get(Company, company.id).stage == Stage.VISITED  # type: ignore[union-attr]
        visit = session.exec(select(Visit)).one()
        assert (visit.status, visit.notes) == (VisitStatus.DONE, "Palettes à céder")
    with session_scope(engine) as session, pytest.raises(VisitError):
        close_visit(session=session, visit=session.exec(select(Visit)).one(), notes="",
                    now=NOW, actor="test")  # fmt: skip


def test_reminders_only_for_reachable_confirmed_visits_once_per_day(
    engine: sa.Engine, settings: Settings, templates: MailTemplates
) -> None:
    with session_scope(engine) as session:
        with_staff(session)
        good = make_interested_company(session)
        declined = make_interested_company(session)
        opted = make_interested_company(session)
        bad_phone = make_interested_company(session, phone="12")
        company_out = make_interested_company(session)
    booked = book_all(engine, settings, templates)
    by_company = {b.visit.company_id: b.visit for b in booked}
    with session_scope(engine) as session:
        invitee = session.exec(select(Contact.email).where(Contact.company_id == declined.id)).one()
        record_reply(session=session, settings=settings, templates=templates,
                     data=reply(by_company[declined.id].uid, "DECLINED", attendee=str(invitee)),
                     now=NOW, actor="t")  # fmt: skip
        contact = session.exec(select(Contact).where(Contact.company_id == opted.id)).one()
        session.add(OptOut(contact_id=contact.id, channel=Channel.SMS, at=NOW, source="test"))  # type: ignore[arg-type]
        session.execute(
            sa.update(Company).where(col(Company.id) == company_out.id).values(stage="opted_out")
        )
        # Every visit on the same day, so the filter, not the date, has to decide.
        for visit in session.exec(select(Visit)):
            visit.starts_at = FIRST_VISIT + timedelta(minutes=visit.id or 0)  # type: ignore[operator]
            session.add(visit)
    sms = SmsTemplates()
    day = date(2026, 11, 4)
    with session_scope(engine) as session:
        due = due_reminders(session=session, settings=settings, day=day)
        assert [r.company_id for r in due] == [good.id]
        assert due[0].phone == "+33612345678"
        assert enqueue_reminders(session=session, settings=settings, reminders=due,
                                 templates=sms, now=NOW) == 1  # fmt: skip
        assert due_reminders(session=session, settings=settings, day=day + timedelta(days=1)) == []
    with session_scope(engine) as session:
        again = due_reminders(session=session, settings=settings, day=day)
        assert enqueue_reminders(session=session, settings=settings, reminders=again,
                                 templates=sms, now=NOW) == 0  # fmt: skip
        [message] = session.exec(select(Message).where(Message.channel == Channel.SMS)).all()
        uid = by_company[good.id].uid
        assert message.step == f"rappel-visite-{uid}-2026-11-04"
        assert "demain mercredi 4 novembre 2026 à 10 h 0" in message.context["body"]  # type: ignore[index]
    assert bad_phone.id in by_company  # booked, only the reminder was skipped


def test_interested_uses_the_latest_answered_call(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        company = make_interested_company(session)
        session.add(
            CallTask(
                company_id=company.id,
                due_on=date(2026, 11, 1),  # type: ignore[arg-type]
                outcome=CallOutcome.REFUSED,
                logged_at=NOW,
            )  # fmt: skip
        )
    with Session(engine) as session:
        assert interested_companies(session=session) == []


def test_two_booking_runs_at_once_never_take_the_same_slot(db_url: str) -> None:
    """The schedule and a CLI run booking together: the lock makes the second wait its turn."""
    import threading

    from models.db import make_engine
    from synergie.messaging.rendering import MailTemplates
    from synergie.settings import Settings
    from synergie.visits.lifecycle import add_staff, book_interested

    engine = make_engine(db_url)
    with Session(engine, expire_on_commit=False) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        for _ in range(6):
            make_interested_company(session)
        session.commit()
    settings = Settings(database_url=db_url)
    start, errors = threading.Barrier(2), []

    def run() -> None:
        own = make_engine(db_url)
        try:
            with Session(own, expire_on_commit=False) as session:
                start.wait()
                book_interested(
                    session=session,
                    settings=settings,
                    templates=MailTemplates(),
                    now=NOW,
                    actor="t",
                )
                session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        booked = session.exec(select(Visit)).all()
    engine.dispose()
    assert len(booked) == 6  # each company once
    spans = sorted((v.reserved_start, v.reserved_end) for v in booked)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))
