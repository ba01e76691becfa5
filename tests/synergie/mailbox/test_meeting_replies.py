"""Calendar answers to a quarterly meeting, read back through a real Dovecot on SQLite and PostgreSQL:
they count like portal answers (capacity, waiting list, a promotion exactly once), are applied once,
and what no invitation explains goes to staff with a French reason."""

from __future__ import annotations

import base64

import sqlalchemy as sa
import vobject
from icalendar import Calendar
from sqlmodel import Session, select

from models import Answer, MailboxMail, MailOutcome, Message, Registration
from synergie.meetings.lifecycle import cancel_meeting, invite_meeting
from synergie.meetings.messages import catch_up
from synergie.settings import Settings
from tests.factories import NOW
from tests.servers.imap_server import ImapAccount
from tests.synergie.mailbox.mails import client_reply, gmail_reply, outlook_reply
from tests.synergie.mailbox.test_checking import LATER, folders, run, with_imap
from tests.synergie.meetings.conftest import Territory, build_territory


def calendar_of(message: Message) -> bytes:
    [(content, ctype)] = message.context["alternatives"]  # type: ignore[index]
    assert ctype.startswith("text/calendar; method=")
    return base64.b64decode(content)


def invitation_to(t: Territory, company_id: int) -> tuple[str, bytes]:
    """The address and the calendar REQUEST the outbox sent to the company's contact."""
    [message] = [m for m in t.messages("invitation-seq0") if m.company_id == company_id]
    return message.to_address, calendar_of(message)


def statuses(t: Territory) -> dict[int, tuple[Answer, int]]:
    with Session(t.engine) as session:
        rows = session.exec(select(Registration).where(Registration.meeting_id == t.meeting_id))
        return {r.company_id: (r.status, r.people) for r in rows}


def sync(t: Territory) -> dict[str, int]:
    """What the meeting-sync deployment does when the answered event (or its schedule) starts it."""
    with t.session() as session:
        counts = catch_up(session=session, settings=t.settings, templates=t.templates, now=LATER,
                          meeting_id=t.meeting_id)  # fmt: skip
        session.commit()
    return counts


def test_calendar_answers_to_a_meeting_count_like_portal_answers(
    engine: sa.Engine, settings: Settings, imap_account: ImapAccount
) -> None:
    settings = with_imap(settings, imap_account)
    t = build_territory(engine, settings, companies=4, capacity=2, per_company=2)
    with t.session() as session:
        invite_meeting(session=session, meeting=t.meeting(session), settings=settings,
                       templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    _, a, b, c = t.companies
    (to_a, request_a), (to_b, request_b), (to_c, request_c) = (
        invitation_to(t, x) for x in (a, b, c)
    )

    # a accepts in Gmail, b in Outlook (its address in capitals), c accepts too late: the meeting is full.
    imap_account.append(gmail_reply(sender=to_a, ics=client_reply(request_a, partstat="ACCEPTED",
                                                                  comment="Sans gluten, merci")))  # fmt: skip
    imap_account.append(outlook_reply(sender=to_b, ics=client_reply(request_b, partstat="ACCEPTED",
                                                                    attendee=to_b.upper())))  # fmt: skip
    imap_account.append(gmail_reply(sender=to_c, ics=client_reply(request_c, partstat="ACCEPTED")))
    # Someone who is no invited company's contact, answering with the meeting's UID.
    imap_account.append(gmail_reply(sender="intrus@evil.example", subject="Invitation acceptée",
                                    ics=client_reply(request_a, partstat="ACCEPTED",
                                                     attendee="intrus@evil.example")))  # fmt: skip
    first = run(engine, settings)
    assert first.counts[MailOutcome.REPLIED] == 3 and first.counts[MailOutcome.TO_REVIEW] == 1
    assert statuses(t)[a] == (Answer.REGISTERED, 1) and statuses(t)[b] == (Answer.REGISTERED, 1)
    assert statuses(t)[c] == (Answer.WAITING, 1)
    # The run reports each answer for the synergie.invitation.answered event, as the portal emits it.
    assert [(x.meeting_id, x.company_id, x.answer) for x in first.meeting_answers] == [
        (t.meeting_id, a, "registered"), (t.meeting_id, b, "registered"), (t.meeting_id, c, "waiting"),
    ]  # fmt: skip
    with Session(engine) as session:
        details = {row.outcome: row.detail for row in session.exec(select(MailboxMail))}
        assert t.registration(session, a).note == "Sans gluten, merci"
    assert "n'est le contact d'aucune entreprise invitée" in details[MailOutcome.TO_REVIEW]
    assert folders(imap_account)["Synergie/Réponses"] == 3
    assert folders(imap_account)["Synergie/À traiter"] == 1

    # What the event starts: confirmations through the outbox, a and b with their calendar REQUEST.
    assert sync(t)["confirmations"] == 3
    for company in (a, b):
        [confirmation] = t.messages(f"reponse-{company}-v1")
        event = Calendar.from_ical(calendar_of(confirmation)).events[0]
        assert event.attendees[0].params["PARTSTAT"] == "ACCEPTED"

    # a declines in its calendar: c is promoted, exactly once; a's copy is cancelled.
    decline = client_reply(request_a, partstat="DECLINED")
    imap_account.append(gmail_reply(sender=to_a, ics=decline, subject="Invitation refusée"))
    second = run(engine, settings)
    assert second.counts[MailOutcome.REPLIED] == 1
    assert [(x.company_id, x.answer) for x in second.meeting_answers] == [(a, "declined")]
    assert statuses(t)[a] == (Answer.DECLINED, 0) and statuses(t)[c] == (Answer.REGISTERED, 1)
    # The same answer read twice: another copy of the mail (its own bytes), then the very same mail.
    imap_account.append(
        outlook_reply(sender=to_a, ics=decline, subject="Refusé: Rencontre d'avril")
    )
    imap_account.append(gmail_reply(sender=to_a, ics=decline, subject="Invitation refusée"))
    third = run(engine, settings)
    assert third.counts[MailOutcome.REPLIED] == 2 and third.meeting_answers == []
    with Session(engine) as session:
        journal = session.exec(select(MailboxMail).order_by(MailboxMail.id)).all()  # type: ignore[arg-type]
    assert all("réponse déjà enregistrée" in row.detail for row in journal[-2:])

    counts = sync(t)
    assert (counts["promoted"], counts["confirmations"]) == (0, 2)
    assert sync(t)["confirmations"] == 0  # a rerun sends nothing twice
    [withdrawal] = t.messages(f"retrait-{a}-")
    cancel = calendar_of(withdrawal)
    document, independent = Calendar.from_ical(cancel), vobject.readOne(cancel.decode())
    [event] = document.events
    assert document["METHOD"] == "CANCEL" and independent.method.value == "CANCEL"
    assert str(event["UID"]) == str(Calendar.from_ical(request_a).events[0]["UID"])
    assert event["SEQUENCE"] == 1 and int(independent.vevent.sequence.value) == 1
    assert [str(x).lower() for x in event.attendees] == [f"mailto:{to_a}"]
    [promotion] = t.messages(f"reponse-{c}-v2")
    assert "Une place s'est libérée" in promotion.context["subject"]  # type: ignore[index]
    promoted = Calendar.from_ical(calendar_of(promotion))
    assert (
        promoted["METHOD"] == "REQUEST"
        and promoted.events[0].attendees[0].params["PARTSTAT"] == "ACCEPTED"
    )

    # Once the meeting is cancelled, an answer to it is for staff, with the reason.
    with t.session() as session:
        cancel_meeting(session=session, meeting=t.meeting(session), settings=settings, templates=t.templates,
                       now=NOW)  # fmt: skip
        session.commit()
    imap_account.append(gmail_reply(sender=to_b, ics=client_reply(request_b, partstat="TENTATIVE")))
    last = run(engine, settings)
    assert last.counts[MailOutcome.TO_REVIEW] == 1 and last.meeting_answers == []
    with Session(engine) as session:
        newest = session.exec(select(MailboxMail).order_by(MailboxMail.id.desc())).first()  # type: ignore[union-attr]
    assert newest is not None and "annulée" in newest.detail
    assert statuses(t)[b] == (Answer.REGISTERED, 1)
    assert folders(imap_account)["INBOX"] == 0
