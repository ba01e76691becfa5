"""Meetings end to end without Prefect: invitations with calendar parts, answers, waiting list, attendance."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import vobject
from icalendar import Calendar
from sqlmodel import select

from models import Activity, Answer, Channel, Company, MeetingStatus, OptOut, Stage, TimeEntry
from synergie.meetings.attendance import record_attendance
from synergie.meetings.lifecycle import cancel_meeting, invite_meeting, reschedule_meeting
from synergie.meetings.messages import catch_up, queue_day_before_sms, queue_week_reminders
from synergie.meetings.planning import MeetingError, summarise
from synergie.meetings.registrations import AnswerRefused, lock_meeting, record_answer
from synergie.messaging.rendering import SmsTemplates
from tests.factories import NOW
from tests.synergie.meetings.conftest import START, Territory


def invite(t: Territory, now=NOW) -> int:  # type: ignore[no-untyped-def]
    with t.session() as session:
        outcome = invite_meeting(session=session, meeting=t.meeting(session), settings=t.settings,
                                 templates=t.templates, now=now)  # fmt: skip
        session.commit()
    return outcome.queued


def answer(t: Territory, company_id: int, what: Answer, people: int = 1, now=NOW, note=None):  # type: ignore[no-untyped-def]
    with t.session() as session:
        lock_meeting(session, t.meeting_id)
        outcome = record_answer(
            session=session, meeting=t.meeting(session), registration=t.registration(session, company_id),
            answer=what, people=people, note=note, contact_id=t.contact(session, company_id).id, now=now,
        )  # fmt: skip
        session.commit()
    return outcome


def sync(t: Territory, now=NOW) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with t.session() as session:
        counts = catch_up(session=session, settings=t.settings, templates=t.templates, now=now,
                          meeting_id=t.meeting_id)  # fmt: skip
        session.commit()
    return counts


def calendar_of(message) -> bytes:  # type: ignore[no-untyped-def]
    [(content, ctype)] = message.context["alternatives"]
    assert ctype.startswith("text/calendar; method=")
    [(filename, attached, mimetype)] = message.context["attachments"]
    assert mimetype == "application/ics" and attached == content
    return base64.b64decode(content)


def parse_both(data: bytes):  # type: ignore[no-untyped-def]
    """Parse with icalendar and with vobject (an independent parser); return icalendar's event and vobject's."""
    document = Calendar.from_ical(data)
    independent = vobject.readOne(data.decode("utf-8"))
    return document, document.events[0], independent


def test_invitations_go_to_each_visited_company_once_with_its_own_calendar_request(
    territory: Territory,
) -> None:
    assert invite(territory) == 5
    assert invite(territory) == 0  # a rerun finds every key taken
    messages = territory.messages("invitation-seq0")
    uids = set()
    for message in messages:
        document, event, independent = parse_both(calendar_of(message))
        assert document["METHOD"] == "REQUEST" and independent.method.value == "REQUEST"
        assert event["SEQUENCE"] == 0 and int(independent.vevent.sequence.value) == 0
        [attendee] = event.attendees  # companies never see each other's addresses
        assert str(attendee).lower() == f"mailto:{message.to_address}"
        assert attendee.params["RSVP"] == "TRUE" and attendee.params["PARTSTAT"] == "NEEDS-ACTION"
        assert str(event["ORGANIZER"]).lower() == "mailto:eit@example.org"
        assert "Tonnellerie Hôte" in str(event["LOCATION"])
        assert document.walk("VTIMEZONE") and event.walk("VALARM")
        assert independent.vevent.dtstart.value == START
        assert independent.vevent.uid.value == event["UID"]
        uids.add(str(event["UID"]))
        text = message.context["text"]
        assert "/reunion/" in text and text.count("/reunion/") == 3
        assert "Je viens" in text and "Peut-être" in text
    assert len(uids) == 1 and next(iter(uids)).startswith("rencontre-")
    with territory.session() as session:
        assert territory.meeting(session).status == MeetingStatus.INVITED


def test_an_opted_out_contact_gets_no_invitation(territory: Territory) -> None:
    with territory.session() as session:
        contact = territory.contact(session, territory.companies[1])
        session.add(OptOut(contact_id=contact.id, channel=Channel.EMAIL, at=NOW, source="test"))  # type: ignore[arg-type]
        session.commit()
        refused = contact.email
    assert invite(territory) == 4
    assert refused not in {m.to_address for m in territory.messages()}


def test_capacity_waiting_list_and_a_withdrawal_promoting_the_first_that_fits(
    make_territory,
) -> None:  # type: ignore[no-untyped-def]
    t = make_territory(companies=6, capacity=4, per_company=2)
    invite(t)
    a, b, c, d, e = t.companies[1:]
    assert answer(t, a, Answer.REGISTERED, 2).registration.status == Answer.REGISTERED
    assert answer(t, b, Answer.REGISTERED, 2).registration.status == Answer.REGISTERED
    waiting_c = answer(t, c, Answer.REGISTERED, 2, now=NOW + timedelta(minutes=1))
    assert (waiting_c.registration.status, waiting_c.position) == (Answer.WAITING, 1)
    waiting_d = answer(t, d, Answer.REGISTERED, 1, now=NOW + timedelta(minutes=2))
    assert (waiting_d.registration.status, waiting_d.position) == (Answer.WAITING, 2)
    # b lowers to one person: one seat is free, c (2) does not fit, d (1) does: d is promoted.
    lowered = answer(t, b, Answer.REGISTERED, 1, now=NOW + timedelta(minutes=3))
    assert [r.company_id for r in lowered.promoted] == [d]
    # a withdraws: two seats, c is first in line and fits.
    withdrawn = answer(t, a, Answer.DECLINED, now=NOW + timedelta(minutes=4))
    assert [r.company_id for r in withdrawn.promoted] == [c]
    with t.session() as session:
        summary = summarise(session=session, meeting=t.meeting(session))
        assert summary.people == 4
        assert {r.company_id for r, _ in summary.of(Answer.REGISTERED)} == {b, c, d}
    assert sync(t)["promoted"] == 0  # nothing left to promote: exactly once
    # Each answer and promotion is confirmed once; the promoted ones get the calendar request.
    confirmations = t.messages("reponse-")
    assert sync(t)["confirmations"] == 0
    promoted_c = [m for m in confirmations if m.company_id == c and "v2" in m.step]
    [message] = promoted_c
    assert "Une place s'est libérée" in message.context["subject"]
    document, event, _ = parse_both(calendar_of(message))
    assert event.attendees[0].params["PARTSTAT"] == "ACCEPTED"
    assert "/parrainage/" in message.context["text"]


def test_a_registered_company_cannot_raise_its_number_beyond_the_seats_left(make_territory) -> None:  # type: ignore[no-untyped-def]
    t = make_territory(companies=3, capacity=3, per_company=2)
    invite(t)
    answer(t, t.companies[1], Answer.REGISTERED, 2)
    answer(t, t.companies[2], Answer.REGISTERED, 1)
    with pytest.raises(AnswerRefused, match="reste à 1 personne"):
        answer(t, t.companies[2], Answer.REGISTERED, 2)
    with pytest.raises(AnswerRefused, match="entre 1 et 2"):
        answer(t, t.companies[0], Answer.REGISTERED, 3)


def test_answers_close_when_the_meeting_starts_and_repeat_answers_change_nothing(
    territory: Territory,
) -> None:
    invite(territory)
    first = answer(territory, territory.companies[1], Answer.MAYBE)
    again = answer(territory, territory.companies[1], Answer.MAYBE)
    assert first.changed and not again.changed
    with pytest.raises(AnswerRefused, match="commencé"):
        answer(territory, territory.companies[1], Answer.REGISTERED, now=START)


def test_reschedule_sends_the_same_uid_with_sequence_1_to_registered_and_waiting_then_cancel(
    make_territory,
) -> None:  # type: ignore[no-untyped-def]
    t = make_territory(companies=4, capacity=2, per_company=2)
    invite(t)
    answer(t, t.companies[1], Answer.REGISTERED, 2)
    answer(t, t.companies[2], Answer.REGISTERED, 1)  # waiting
    answer(t, t.companies[3], Answer.DECLINED)
    [uid] = {str(parse_both(calendar_of(m))[1]["UID"]) for m in t.messages("invitation-seq0")}
    with t.session() as session:
        queued = reschedule_meeting(session=session, meeting=t.meeting(session), starts_at=START + timedelta(days=7),
                                    ends_at=None, settings=t.settings, templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    assert queued == 2
    moved = t.messages("invitation-seq1")
    assert {m.company_id for m in moved} == {t.companies[1], t.companies[2]}
    for message in moved:
        document, event, independent = parse_both(calendar_of(message))
        assert (str(event["UID"]), event["SEQUENCE"]) == (uid, 1)
        assert independent.vevent.dtstart.value == START + timedelta(days=7)
        assert "Nouvel horaire" in message.context["subject"]
    with t.session() as session:
        cancelled = cancel_meeting(session=session, meeting=t.meeting(session), settings=t.settings,
                                   templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    assert cancelled == 3  # everyone invited but the company that declined
    for message in t.messages("annulation-seq2"):
        document, event, independent = parse_both(calendar_of(message))
        assert document["METHOD"] == "CANCEL" and independent.method.value == "CANCEL"
        assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (uid, 2, "CANCELLED")
    with pytest.raises(AnswerRefused, match="annulée"):
        answer(t, t.companies[0], Answer.REGISTERED)


def test_reminders_a_week_before_and_the_day_before_each_leave_once(territory: Territory) -> None:
    invite(territory)
    answer(territory, territory.companies[1], Answer.REGISTERED, 1)
    answer(territory, territory.companies[2], Answer.DECLINED)
    week_before = START - timedelta(days=6)
    with territory.session() as session:
        assert queue_week_reminders(session=session, settings=territory.settings, templates=territory.templates,
                                    now=NOW) == 0  # fmt: skip
        added = queue_week_reminders(session=session, settings=territory.settings,
                                     templates=territory.templates, now=week_before)  # fmt: skip
        again = queue_week_reminders(session=session, settings=territory.settings,
                                     templates=territory.templates, now=week_before + timedelta(days=2))  # fmt: skip
        session.commit()
    assert (added, again) == (3, 0)  # the host and two others never answered
    day_before = START - timedelta(hours=20)
    with territory.session() as session:
        sms = queue_day_before_sms(session=session, settings=territory.settings, templates=SmsTemplates(),
                                   now=day_before)  # fmt: skip
        session.commit()
    assert sms == 1
    [message] = territory.messages("rappel-veille")
    assert message.channel == Channel.SMS and message.company_id == territory.companies[1]
    assert (
        "03 53 01 00 00" in message.context["body"]
        and "Tonnellerie Hôte" in message.context["body"]
    )


def test_attendance_holds_the_meeting_moves_attendees_and_books_the_hours(
    territory: Territory,
) -> None:
    invite(territory)
    for company in territory.companies[1:3]:
        answer(territory, company, Answer.REGISTERED, 1)
    with territory.session() as session, pytest.raises(MeetingError, match="pas encore commencé"):
        record_attendance(session=session, meeting=territory.meeting(session), present_company_ids=[],
                              now=NOW, actor="staff:test", hours=10, timezone="Europe/Paris")  # fmt: skip
    with territory.session() as session:
        outcome = record_attendance(
            session=session, meeting=territory.meeting(session), present_company_ids=[territory.companies[1]],
            now=START + timedelta(hours=4), actor="staff:test", hours=10, timezone="Europe/Paris",
        )  # fmt: skip
        session.commit()
    assert len(outcome.present) == 1 and len(outcome.absent) == 1
    with territory.session() as session:
        assert territory.meeting(session).status == MeetingStatus.HELD
        assert session.get(Company, territory.companies[1]).stage == Stage.PARTICIPANT  # type: ignore[union-attr]
        assert session.get(Company, territory.companies[2]).stage == Stage.VISITED  # type: ignore[union-attr]
        [entry] = session.exec(select(TimeEntry)).all()
        assert (entry.activity, entry.hours) == (Activity.MEETING, 10)


def reply_to(message, partstat: str, *, attendee: str | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """What a calendar sends back on « Accept » / « Decline »: the same event, METHOD:REPLY, the PARTSTAT."""
    unfolded = calendar_of(message).replace(b"\r\n ", b"")
    reply = unfolded.replace(b"METHOD:REQUEST", b"METHOD:REPLY")
    for asked in (b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED"):
        reply = reply.replace(asked, b"PARTSTAT=" + partstat.encode())
    if attendee is not None:
        reply = reply.replace(message.to_address.encode(), attendee.encode())
    return reply


def test_a_calendar_reply_counts_like_a_portal_answer(make_territory) -> None:  # type: ignore[no-untyped-def]
    from synergie.meetings.registrations import record_calendar_reply

    t = make_territory(companies=3, capacity=2, per_company=2)
    invite(t)
    a, b = t.companies[1:]
    [to_a] = [m for m in t.messages("invitation-seq0") if m.company_id == a]
    [to_b] = [m for m in t.messages("invitation-seq0") if m.company_id == b]
    answer(t, t.companies[0], Answer.REGISTERED, 1)

    def read(data: bytes):  # type: ignore[no-untyped-def]
        with t.session() as session:
            result = record_calendar_reply(session=session, data=data, now=NOW)
            session.commit()
        return result

    first = read(reply_to(to_a, "ACCEPTED"))
    registration = first.outcome.registration
    assert (registration.status, registration.people, first.outcome.changed) == (
        Answer.REGISTERED,
        1,
        True,
    )
    assert (first.company_id, first.stale) == (a, False)
    assert not read(reply_to(to_a, "ACCEPTED")).outcome.changed  # the same message read twice
    # The meeting is full (2 people): b's « Accept » waits in line, as on the portal.
    waiting = read(reply_to(to_b, "ACCEPTED")).outcome
    assert (waiting.registration.status, waiting.position) == (Answer.WAITING, 1)
    # a declines from its calendar: b is promoted, exactly once.
    declined = read(reply_to(to_a, "DECLINED")).outcome
    assert declined.registration.status == Answer.DECLINED
    assert [r.company_id for r in declined.promoted] == [b]
    assert read(reply_to(to_a, "TENTATIVE")).outcome.registration.status == Answer.MAYBE
    assert sync(t)["promoted"] == 0
    stranger = reply_to(to_a, "DECLINED", attendee="stranger@example.org")
    with pytest.raises(AnswerRefused, match="n'est le contact d'aucune entreprise invitée"):
        read(stranger)
    # After a reschedule, a reply to the old date is stale: it changes nothing.
    with t.session() as session:
        reschedule_meeting(session=session, meeting=t.meeting(session), starts_at=START + timedelta(days=1),
                           ends_at=None, settings=t.settings, templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    stale = read(reply_to(to_b, "DECLINED"))
    assert stale.stale and stale.outcome.registration.status == Answer.REGISTERED
    with t.session() as session:
        cancel_meeting(session=session, meeting=t.meeting(session), settings=t.settings, templates=t.templates,
                       now=NOW)  # fmt: skip
        session.commit()
    with pytest.raises(AnswerRefused, match="annulée"):
        read(reply_to(to_b, "DECLINED"))


def own_copy(t: Territory, company_id: int, kind: str):  # type: ignore[no-untyped-def]
    """The one message of ``kind`` to the company, with its calendar document parsed by both parsers."""
    [message] = [m for m in t.messages(kind) if m.company_id == company_id]
    return message, *parse_both(calendar_of(message))


def test_a_company_taking_back_its_seat_gets_a_cancel_of_its_own_copy_once(make_territory) -> None:  # type: ignore[no-untyped-def]
    t = make_territory(companies=4, capacity=2, per_company=2)
    invite(t)
    a, b, c = t.companies[1:]
    [uid] = {str(parse_both(calendar_of(m))[1]["UID"]) for m in t.messages("invitation-seq0")}
    answer(t, a, Answer.REGISTERED, 2)
    answer(t, b, Answer.REGISTERED, 1, now=NOW + timedelta(minutes=1))  # waiting
    answer(t, c, Answer.DECLINED)  # never held a seat: no cancel
    sync(t)
    # a withdraws: its confirmation carries the CANCEL of its copy; b is promoted and gets the REQUEST.
    withdrawn = answer(t, a, Answer.DECLINED, now=NOW + timedelta(minutes=2))
    assert [r.company_id for r in withdrawn.promoted] == [b]
    assert sync(t)["confirmations"] == 2
    assert sync(t) == {"promoted": 0, "confirmations": 0, "referral_invitations": 0, "removals": 0}
    message, document, event, independent = own_copy(t, a, f"retrait-{a}-v2")
    assert message.to_address == t.messages(f"reponse-{a}-v1")[0].to_address
    assert document["METHOD"] == "CANCEL" and independent.method.value == "CANCEL"
    assert (str(event["UID"]), event["SEQUENCE"], str(event["STATUS"])) == (uid, 1, "CANCELLED")
    assert int(independent.vevent.sequence.value) == 1 and independent.vevent.uid.value == uid
    [attendee] = event.attendees
    assert str(attendee).lower() == f"mailto:{message.to_address}"
    assert len(independent.vevent.contents["attendee"]) == 1
    assert "retire la rencontre de votre agenda" in message.context["text"]
    assert message.context["attachments"][0][0] == "annulation.ics"
    _, document, event, _ = own_copy(t, b, f"reponse-{b}-v2")
    assert document["METHOD"] == "REQUEST" and event["SEQUENCE"] == 0
    assert event.attendees[0].params["PARTSTAT"] == "ACCEPTED"
    assert not t.messages(f"retrait-{c}") and not [
        m for m in t.messages(f"reponse-{c}-") if m.context["alternatives"]
    ]
    # b takes back its seat too, and a says yes again: its REQUEST goes above its CANCEL.
    answer(t, b, Answer.MAYBE, now=NOW + timedelta(minutes=3))
    answer(t, a, Answer.REGISTERED, 1, now=NOW + timedelta(minutes=4))
    sync(t)
    _, document, event, independent = own_copy(t, a, f"reponse-{a}-v3")
    assert (document["METHOD"], event["SEQUENCE"], int(independent.vevent.sequence.value)) == (
        "REQUEST",
        2,
        2,
    )
    _, document, event, _ = own_copy(t, b, f"retrait-{b}-v3")  # maybe after yes: a cancel too
    assert (document["METHOD"], event["SEQUENCE"]) == ("CANCEL", 1)
    # A move goes to each copy above its last document: a at 3 (its own line), the others at 1.
    with t.session() as session:
        reschedule_meeting(session=session, meeting=t.meeting(session), starts_at=START + timedelta(days=7),
                           ends_at=None, settings=t.settings, templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    moved = {
        m.company_id: parse_both(calendar_of(m))[1]["SEQUENCE"]
        for m in t.messages("invitation-seq1")
    }
    assert moved == {a: 3}
    with t.session() as session:
        cancel_meeting(session=session, meeting=t.meeting(session), settings=t.settings, templates=t.templates,
                       now=NOW)  # fmt: skip
        session.commit()
    cancelled = {
        m.company_id: parse_both(calendar_of(m))[1]["SEQUENCE"]
        for m in t.messages("annulation-seq2")
    }
    assert cancelled[a] == 4 and cancelled[b] == 4 and cancelled[t.companies[0]] == 2


def test_a_quick_yes_then_no_cancels_nothing_it_never_confirmed(territory: Territory) -> None:
    invite(territory)
    company = territory.companies[1]
    answer(territory, company, Answer.REGISTERED, 1)
    answer(territory, company, Answer.DECLINED, now=NOW + timedelta(minutes=1))
    assert sync(territory)["confirmations"] == 1
    assert not territory.messages("retrait-")
    [message] = territory.messages(f"reponse-{company}-v2")
    assert message.context["alternatives"] == []


def test_a_company_staff_remove_gets_a_cancel_of_its_copy_and_its_seats_go_to_the_line(
    make_territory,
) -> None:  # type: ignore[no-untyped-def]
    from synergie.meetings.planning import remove_guest

    t = make_territory(companies=5, capacity=2, per_company=2)
    invite(t)
    registered, waiting, declined, silent = t.companies[1:]
    answer(t, registered, Answer.REGISTERED, 2)
    answer(t, waiting, Answer.REGISTERED, 2, now=NOW + timedelta(minutes=1))
    answer(t, declined, Answer.DECLINED)
    sync(t)
    with t.session() as session:
        for company_id in (
            registered,
            declined,
            silent,
            silent,
        ):  # the second removal changes nothing
            company = session.get(Company, company_id)
            remove_guest(session=session, meeting=t.meeting(session), company=company, now=NOW)  # type: ignore[arg-type]
        session.commit()
    with t.session() as session:
        assert t.registration(session, waiting).status == Answer.REGISTERED  # promoted at once
    with t.session() as session:  # the invite run sends the removals: one each, the decliner none
        outcome = invite_meeting(session=session, meeting=t.meeting(session), settings=t.settings,
                                 templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    assert (outcome.queued, outcome.removals) == (0, 2)
    assert sync(t)["removals"] == 0 and invite(t) == 0
    for company_id in (registered, silent):
        message, document, event, independent = own_copy(t, company_id, f"retrait-{company_id}-")
        assert document["METHOD"] == "CANCEL" and independent.method.value == "CANCEL"
        assert event["SEQUENCE"] == 1 and str(event["STATUS"]) == "CANCELLED"
        assert [str(a).lower() for a in event.attendees] == [f"mailto:{message.to_address}"]
        assert message.context["subject"].startswith("Invitation retirée")
    assert not t.messages(f"retrait-{declined}-")
    [promotion] = t.messages(f"reponse-{waiting}-v2")
    assert parse_both(calendar_of(promotion))[1].attendees[0].params["PARTSTAT"] == "ACCEPTED"
    with pytest.raises(AnswerRefused, match="plus valable"):
        answer(t, silent, Answer.REGISTERED, 1)


def test_a_company_put_back_on_the_list_is_invited_again_in_a_new_round(make_territory) -> None:  # type: ignore[no-untyped-def]
    from synergie.meetings.planning import add_guest, remove_guest

    t = make_territory(companies=3, capacity=4, per_company=2)
    invite(t)
    company_id = t.companies[1]
    [uid] = {str(parse_both(calendar_of(m))[1]["UID"]) for m in t.messages("invitation-seq0")
             if m.company_id == company_id}  # fmt: skip

    def staff(verb) -> None:  # type: ignore[no-untyped-def]
        with t.session() as session:
            verb(
                session=session,
                meeting=t.meeting(session),
                company=session.get(Company, company_id),
                now=NOW,
            )
            session.commit()

    def sequences(kind: str) -> list[int]:
        return [int(parse_both(calendar_of(m))[1]["SEQUENCE"]) for m in t.messages(kind)
                if m.company_id == company_id]  # fmt: skip

    answer(t, company_id, Answer.REGISTERED, 2)
    staff(remove_guest)
    invite(t)
    assert sequences(f"retrait-{company_id}-") == [1]
    staff(add_guest)  # back on the list: a new round, its seats given up with the removal
    with t.session() as session:
        registration = t.registration(session, company_id)
        assert (registration.rounds, registration.status, registration.people) == (
            1,
            Answer.NO_ANSWER,
            0,
        )
    assert invite(t) == 1 and invite(t) == 0 and sync(t)["confirmations"] == 0
    message, document, event, _ = own_copy(t, company_id, "invitation-seq0-retour1")
    assert document["METHOD"] == "REQUEST" and str(event["UID"]) == uid
    assert event["SEQUENCE"] == 2  # above its copy's cancel: calendars take it back
    # Taken off again before answering: its live copy is cancelled again, once.
    staff(remove_guest)
    invite(t)
    invite(t)
    assert sequences(f"retrait-{company_id}-") == [1, 3]
    # And back once more: it answers, and its seat is confirmed.
    staff(add_guest)
    assert invite(t) == 1
    assert sequences("invitation-seq0-retour2") == [4]
    assert answer(t, company_id, Answer.REGISTERED, 1).changed
    assert sync(t)["confirmations"] == 1


def test_a_referral_is_invited_once_and_the_report_says_who_brought_whom(
    territory: Territory,
) -> None:
    from synergie.meetings.referrals import create_referral, validate_referral
    from synergie.reporting.funnel import referrals

    invite(territory)
    answer(territory, territory.companies[1], Answer.REGISTERED)
    form = validate_referral({"company_name": "Cartonnerie Voisine", "postcode": "21700", "commune": "Nuits",
                              "contact_name": "Léa", "email": "lea@example.org", "consent": "on"})  # fmt: skip
    with territory.session() as session:
        lock_meeting(session, territory.meeting_id)
        referrer = territory.contact(session, territory.companies[1])
        outcome = create_referral(session=session, meeting=territory.meeting(session), referrer=referrer,
                                  form=form, now=NOW)  # fmt: skip
        session.commit()
    assert outcome.new_company and not outcome.already_referred
    assert sync(territory)["referral_invitations"] == 1
    assert sync(territory)["referral_invitations"] == 0
    [invitation] = [
        m for m in territory.messages("invitation-seq0") if m.to_address == "lea@example.org"
    ]
    assert invitation.context["subject"].startswith("Atelier 0 vous invite")
    with territory.session() as session:
        assert referrals(session=session) == [
            ("Rencontre d'avril", "Cartonnerie Voisine", "Atelier 0")
        ]
