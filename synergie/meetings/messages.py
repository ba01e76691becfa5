"""What meetings send, queued in the outbox under keys that make every message leave once.

Keys (step + contact + channel, see ``synergie.messaging.outbox``):

- ``reunion-<id>-invitation-seq<n>``: the invitation, once per version of the meeting (SEQUENCE),
  with ``-retour<k>`` for a company staff put back on the list k times (a new round);
- ``reunion-<id>-reponse-v<k>``: the confirmation of a company's k-th answer (or promotion);
- ``reunion-<id>-annulation-seq<n>``: the METHOD:CANCEL of the whole meeting;
- ``reunion-<id>-retrait-<company>-v<k>``: the METHOD:CANCEL of one company's own copy, when it
  withdraws (its k-th answer takes back a confirmed seat: the confirmation carries it) or when
  staff take it off the list (see ``synergie.meetings.copies`` for its SEQUENCE);
- ``reunion-<id>-rappel-semaine``: the e-mail a week before, to those who have not answered;
- ``reunion-<id>-rappel-veille-<date>``: the SMS the day before, to those registered.

A rule that changes (a new reminder delay, a rerun, a second run at the same time) finds the
key taken and sends nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from models.enums import Answer, Channel, MeetingStatus
from models.tables import Company, Contact, Meeting, Message, Referral, Registration
from synergie.calendar.itip import (
    MEETING_PRODID,
    Invitation,
    Participant,
    build_for_attendees,
    invitation_email_parts,
)
from synergie.mailing.campaigns import sender_domain
from synergie.meetings.copies import (
    WITHDRAWAL_KIND,
    cancel_sequence,
    own_cancellations,
    request_sequence,
    withdrawal_step_prefix,
)
from synergie.meetings.planning import french_date
from synergie.meetings.registrations import lock_meeting, promote_waiting, waiting_position
from synergie.messaging.links import referral_url, rsvp_url, unsubscribe_url
from synergie.messaging.optouts import opted_out_contact_ids
from synergie.messaging.outbox import enqueue, message_key, new_message_id
from synergie.messaging.rendering import MailTemplates, SmsTemplates, programme_context
from synergie.messaging.sending import prepared_email, prepared_sms
from synergie.settings import Settings

__all__ = [
    "ANSWER_TEMPLATE",
    "CANCELLATION_TEMPLATE",
    "INVITATION_TEMPLATE",
    "REMINDER_TEMPLATE",
    "Recipient",
    "catch_up",
    "email_recipients",
    "meeting_context",
    "meeting_invitation",
    "queue_answer_confirmations",
    "queue_cancellations",
    "queue_day_before_sms",
    "queue_invitations",
    "queue_referral_invitations",
    "queue_removals",
    "queue_week_reminders",
]

logger = logging.getLogger(__name__)

INVITATION_TEMPLATE = "invitation-rencontre"
ANSWER_TEMPLATE = "reponse-rencontre"
CANCELLATION_TEMPLATE = "annulation-rencontre"
REMINDER_TEMPLATE = "rappel-rencontre"  # the week-before e-mail and the day-before SMS
RETURN_KIND = "retour"  # an invitation's round, once staff put the company back on the list
WEEK_BEFORE = timedelta(days=7)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Recipient:
    """One contact to write to about a meeting, with the company's registration."""

    registration: Registration
    company: Company
    contact: Contact


def step(meeting: Meeting, kind: str) -> str:
    """Return the outbox step of one kind of meeting message."""
    return f"reunion-{meeting.id}-{kind}"


def meeting_context(
    meeting: Meeting, settings: Settings, host: Company | None = None
) -> dict[str, Any]:
    """Return the ``meeting`` variable of the templates: title, French day and hours, place, agenda."""
    day, hour = french_date(meeting.starts_at, settings.tz)
    _, end_hour = french_date(meeting.ends_at, settings.tz)
    return {
        "id": meeting.id, "title": meeting.title, "format": meeting.format, "day": day,
        "hour": hour, "end_hour": end_hour, "place": meeting.place, "agenda": meeting.agenda,
        "updated": meeting.sequence > 0, "host": host.name if host else "",
        "per_company": meeting.per_company,
    }  # fmt: skip


def meeting_invitation(
    meeting: Meeting,
    *,
    settings: Settings,
    contact: Contact,
    company: Company,
    accepted: bool = False,
    sequence: int | None = None,
) -> Invitation:
    """Return this contact's copy of the meeting's calendar invitation (the only ATTENDEE in it).

    ``sequence`` is the copy's own (``synergie.meetings.copies``); the meeting's by default.
    """
    return Invitation(
        uid=meeting.uid,
        start=meeting.starts_at,
        end=meeting.ends_at,
        organizer=Participant(settings.officer_name, settings.officer_email),
        attendee=Participant(contact.name or company.name, contact.email or ""),
        company=company.name,
        location=meeting.place,
        summary=f"{meeting.title} — {settings.programme_name}",
        # The same for every copy (personal answer links are in the e-mail), so that one
        # document per version is built and only its ATTENDEE line differs (build_for_attendees).
        description=f"{meeting.format}. {meeting.agenda}\n\nRépondez avec les boutons de l'e-mail "
        f"d'invitation. Contact : {settings.officer_name}, {settings.officer_phone}.",
        sequence=meeting.sequence if sequence is None else sequence,
        timezone=settings.timezone,
        prodid=MEETING_PRODID,
        what="la rencontre",
        attendee_partstat="ACCEPTED" if accepted else "NEEDS-ACTION",
    )


def _calendars(
    meeting: Meeting, recipients: Sequence[Recipient], *, settings: Settings, now: datetime,
    accepted: bool = False, method: str = "REQUEST", sequences: dict[int, int] | None = None,
) -> Iterator[bytes]:  # fmt: skip
    """Yield each recipient's copy of the meeting's calendar document, built once per SEQUENCE.

    ``sequences`` gives a company's own SEQUENCE where it is not the meeting's (a copy that was
    cancelled on its own before: ``synergie.meetings.copies``).
    """
    if not recipients:
        return iter(())
    own = sequences or {}
    groups: dict[int, list[int]] = {}
    for index, recipient in enumerate(recipients):
        groups.setdefault(own.get(recipient.company.id or 0, meeting.sequence), []).append(index)
    first = recipients[0]
    invitation = meeting_invitation(
        meeting, settings=settings, contact=first.contact, company=first.company, accepted=accepted
    )

    def copies(sequence: int, members: Sequence[Recipient]) -> Iterator[bytes]:
        people = [
            Participant(r.contact.name or r.company.name, r.contact.email or "") for r in members
        ]
        version = replace(invitation, sequence=sequence)
        return build_for_attendees(version, people, now=now, method=method)

    if len(groups) == 1:  # the usual case: every copy at one SEQUENCE, generated lazily
        [sequence] = groups
        return copies(sequence, recipients)
    documents: list[bytes] = [b""] * len(recipients)
    for sequence, indexes in groups.items():
        built = copies(sequence, [recipients[i] for i in indexes])
        for index, document in zip(indexes, built, strict=True):
            documents[index] = document
    return iter(documents)


def _request_sequences(
    session: Session, meeting: Meeting, recipients: Sequence[Recipient]
) -> dict[int, int]:
    """Return the own SEQUENCE of the recipients' copies that were cancelled on their own before."""
    counts = own_cancellations(session, meeting, (r.company.id or 0 for r in recipients))
    return {company: request_sequence(meeting, n) for company, n in counts.items()}


def _links(settings: Settings, contact: Contact, meeting: Meeting) -> dict[str, str]:
    # One signed token, three answers: the path after it only preselects the page's choice.
    base = rsvp_url(settings, contact.public_id, meeting.id, "oui").removesuffix("/oui")  # type: ignore[arg-type]
    return {"yes": f"{base}/oui", "no": f"{base}/non", "maybe": f"{base}/peut-etre"}


def _row(
    *, meeting: Meeting, kind: str, recipient: Recipient, channel: Channel, to: str,
    content: dict[str, Any], domain: str,
) -> dict[str, Any]:  # fmt: skip
    name = step(meeting, kind)
    return {
        "key": message_key(
            campaign_id=None, step=name, recipient=f"contact:{recipient.contact.id}", channel=channel
        ),
        "campaign_id": None, "step": name, "channel": channel.value,
        "contact_id": recipient.contact.id, "company_id": recipient.company.id, "to_address": to,
        "message_id": new_message_id(domain), "context": content,
    }  # fmt: skip


def _email_row(
    *, meeting: Meeting, kind: str, recipient: Recipient, domain: str, rendered: Any,
    alternatives: Any = (), attachments: Any = (),
) -> dict[str, Any]:  # fmt: skip
    """Return the outbox row of one rendered e-mail to ``recipient``'s contact."""
    contact = recipient.contact
    content = prepared_email(
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        to_name=contact.name or "", alternatives=alternatives, attachments=attachments,
    )  # fmt: skip
    return _row(meeting=meeting, kind=kind, recipient=recipient, channel=Channel.EMAIL,
                to=contact.email or "", domain=domain, content=content)  # fmt: skip


def _enqueue(session: Session, rows: Iterable[dict[str, Any]], now: datetime) -> int:
    added, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _CHUNK:
            added += enqueue(session.connection(), chunk, now=now)
            chunk = []
    return added + enqueue(session.connection(), chunk, now=now)


def email_recipients(
    *, session: Session, meeting: Meeting, statuses: Sequence[Answer] | None = None,
    company_ids: Sequence[int] | None = None, answering_only: bool = False, removed: bool = False,
) -> list[Recipient]:  # fmt: skip
    """Return the contacts with a working e-mail of the meeting's companies, opted-out ones left out.

    ``statuses`` keeps the registrations with those answers; ``answering_only`` keeps, per
    company, the contact who answered (when known); ``removed`` gives the companies staff took
    off the list instead of those on it.
    """
    query = (
        select(Registration, Company, Contact)
        .join(Company, col(Company.id) == col(Registration.company_id))
        .join(Contact, col(Contact.company_id) == col(Company.id))
        .where(
            Registration.meeting_id == meeting.id,
            col(Registration.removed).is_(removed),
            col(Contact.email).is_not(None),
            col(Contact.email_invalid_at).is_(None),
        )
        .order_by(col(Registration.id), col(Contact.id))
    )
    if statuses is not None:
        query = query.where(col(Registration.status).in_(list(statuses)))
    if company_ids is not None:
        query = query.where(col(Registration.company_id).in_(list(company_ids)))
    rows = session.exec(query).all()
    if answering_only:
        rows = [
            (r, company, contact) for r, company, contact in rows
            if r.contact_id is None or r.contact_id == contact.id
        ]  # fmt: skip
    refused: set[int] = set()
    ids = [contact.id for _, _, contact in rows if contact.id is not None]
    for start in range(0, len(ids), 1000):
        # The one place that says who may be written to (opt-outs, companies that opted out).
        refused |= opted_out_contact_ids(
            session=session,
            contact_ids=ids[start : start + 1000],
            channel=Channel.EMAIL,
        )
    return [
        Recipient(r, company, contact) for r, company, contact in rows if contact.id not in refused
    ]


def _host(session: Session, meeting: Meeting) -> Company | None:
    return session.get(Company, meeting.host_company_id) if meeting.host_company_id else None


def _invitation_content(
    *, meeting: Meeting, recipient: Recipient, settings: Settings, templates: MailTemplates,
    ics: bytes, context: dict[str, Any], referrer: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    contact, company = recipient.contact, recipient.company
    alternatives, attachments = invitation_email_parts(
        ics, filename="invitation.ics", method="REQUEST"
    )
    rendered = templates.render(
        INVITATION_TEMPLATE,
        {**context, "company": company, "contact": contact, "referrer": referrer,
         "links": _links(settings, contact, meeting),
         "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL)},
    )  # fmt: skip
    return prepared_email(
        subject=rendered.subject, text=rendered.text, html=rendered.html, to_name=contact.name or "",
        alternatives=alternatives, attachments=attachments,
    )  # fmt: skip


def invitation_kind(meeting: Meeting, registration: Registration) -> str:
    """``invitation-seq<n>``, and ``-retour<k>`` once staff put the company back on the list k times."""
    kind = f"invitation-seq{meeting.sequence}"
    return kind if not registration.rounds else f"{kind}-{RETURN_KIND}{registration.rounds}"


def queue_invitations(
    *, session: Session, meeting: Meeting, recipients: Sequence[Recipient], settings: Settings,
    templates: MailTemplates, now: datetime, referrers: dict[int, str] | None = None,
) -> int:  # fmt: skip
    """Queue the invitation (with its calendar REQUEST) of the meeting's current SEQUENCE; return how many are new.

    ``referrers`` maps a referred company's id to who invites it (« X vous invite… »).
    """
    domain = sender_domain(settings)
    context = {"meeting": meeting_context(meeting, settings, _host(session, meeting)),
               "programme": programme_context(settings)}  # fmt: skip
    rows = (
        _row(
            meeting=meeting,
            kind=invitation_kind(meeting, recipient.registration),
            recipient=recipient,
            channel=Channel.EMAIL,
            to=recipient.contact.email or "",
            domain=domain,
            content=_invitation_content(
                meeting=meeting,
                recipient=recipient,
                settings=settings,
                templates=templates,
                ics=ics,
                context=context,
                referrer=(referrers or {}).get(recipient.company.id or 0),
            ),
        )  # fmt: skip
        for recipient, ics in zip(
            recipients,
            _calendars(
                meeting,
                recipients,
                settings=settings,
                now=now,
                sequences=_request_sequences(session, meeting, recipients),
            ),  # fmt: skip
            strict=True,
        )
    )
    added = _enqueue(session, rows, now)
    first_time = sorted(
        {r.registration.id or 0 for r in recipients if r.registration.invited_at is None}
    )
    for start in range(0, len(first_time), 1000):
        session.execute(
            sa.update(Registration)
            .where(col(Registration.id).in_(first_time[start : start + 1000]))
            .values(invited_at=now)
            .execution_options(synchronize_session=False)
        )
    for recipient in recipients:
        if recipient.registration.invited_at is None:
            # What the UPDATE wrote, told to the loaded rows without making them dirty.
            set_committed_value(recipient.registration, "invited_at", now)
    return added


def _latest_documents(
    session: Session, meeting: Meeting, company_ids: Iterable[int]
) -> dict[int, str]:
    """Return what each company's latest answer message gave its calendar: "seat", "cancelled" or "none".

    "seat": a confirmation of a seat (with the calendar REQUEST, ACCEPTED); "cancelled": its own
    METHOD:CANCEL; "none": a confirmation without a calendar part (waiting, maybe, declined).
    Read from the outbox rows (their step names the company and version, their prepared content
    keeps the calendar part): what was sent, not what was decided. Companies without any answer
    message are left out.
    """
    wanted = sorted(set(company_ids))
    latest: dict[int, tuple[int, str]] = {}
    answers, withdrawals = step(meeting, "reponse-"), withdrawal_step_prefix(meeting.id or 0)
    for start in range(0, len(wanted), 1000):
        rows = session.execute(
            sa.select(col(Message.company_id), col(Message.step), col(Message.context)).where(
                col(Message.company_id).in_(wanted[start : start + 1000]),
                sa.or_(
                    col(Message.step).startswith(answers),
                    col(Message.step).startswith(withdrawals),
                ),
            )
        ).all()
        for company_id, name, context in rows:
            version = int(name.rpartition("-v")[2] or 0)
            if name.startswith(withdrawals):
                what = "cancelled"
            elif any(
                "method=REQUEST" in str(part[1])
                for part in (context or {}).get("alternatives") or ()
            ):
                what = "seat"
            else:
                what = "none"
            if company_id is not None and version >= latest.get(company_id, (-1, ""))[0]:
                latest[company_id] = (version, what)
    return {company: what for company, (_, what) in latest.items()}


def _invited_again(session: Session, meeting: Meeting, company_ids: Sequence[int]) -> set[int]:
    """Those of the companies whose latest invitation of a new round left after their latest own cancel."""
    again = col(Message.step).like(f"{step(meeting, 'invitation-seq')}%-{RETURN_KIND}%")
    cancelled = col(Message.step).startswith(withdrawal_step_prefix(meeting.id or 0))
    found: set[int] = set()
    for start in range(0, len(company_ids), 1000):
        rows = session.execute(
            sa.select(
                col(Message.company_id),
                sa.func.max(sa.case((again, col(Message.id)))),
                sa.func.max(sa.case((cancelled, col(Message.id)))),
            )
            .where(
                col(Message.company_id).in_(company_ids[start : start + 1000]),
                sa.or_(again, cancelled),
            )
            .group_by(col(Message.company_id))
        ).all()
        found.update(
            int(company) for company, invited, cancel in rows if (invited or 0) > (cancel or 0)
        )
    return found


def queue_answer_confirmations(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> int:
    """Queue one confirmation per answer (or promotion) not confirmed yet; return how many are new.

    A registered company's confirmation carries the calendar request (accepted) and the
    personal referral link; a waiting one says its place in line. A company that takes back a
    confirmed seat (no, or maybe, after yes) gets its confirmation with the METHOD:CANCEL of its
    own copy, under the key ``retrait-<company>-v<k>``.
    """
    pending = session.exec(
        select(Registration).where(
            Registration.meeting_id == meeting.id,
            col(Registration.version) > col(Registration.confirmed_version),
        )
    ).all()
    if not pending:
        return 0
    recipients = email_recipients(
        session=session, meeting=meeting, company_ids=[r.company_id for r in pending],
        answering_only=True,
    )  # fmt: skip
    context = {"meeting": meeting_context(meeting, settings, _host(session, meeting)),
               "programme": programme_context(settings)}  # fmt: skip
    domain = sender_domain(settings)
    rows = []
    registered = [r for r in recipients if r.registration.status == Answer.REGISTERED]
    calendars = dict(
        zip(
            (r.contact.id for r in registered),
            _calendars(
                meeting,
                registered,
                settings=settings,
                now=now,
                accepted=True,
                sequences=_request_sequences(session, meeting, registered),
            ),  # fmt: skip
            strict=True,
        )
    )
    latest = _latest_documents(
        session,
        meeting,
        (r.company.id or 0 for r in recipients if r.registration.status != Answer.REGISTERED),
    )
    withdrawing = [
        r for r in recipients
        if r.registration.status != Answer.REGISTERED and latest.get(r.company.id or 0) == "seat"
    ]  # fmt: skip
    cancels = _own_cancels(session, meeting, withdrawing, settings=settings, now=now)
    for recipient in recipients:
        registration, contact, company = (
            recipient.registration,
            recipient.contact,
            recipient.company,
        )
        status = Answer(registration.status)
        alternatives: tuple[tuple[bytes, str], ...] = ()
        attachments: tuple[Any, ...] = ()
        kind = f"reponse-{registration.company_id}-v{registration.version}"
        if status == Answer.REGISTERED:
            alternatives, attachments = invitation_email_parts(
                calendars[contact.id], filename="invitation.ics", method="REQUEST"
            )
        elif contact.id in cancels:
            alternatives, attachments = invitation_email_parts(
                cancels[contact.id], filename="annulation.ics", method="CANCEL"
            )
            kind = f"{WITHDRAWAL_KIND}-{registration.company_id}-v{registration.version}"
        rendered = templates.render(
            ANSWER_TEMPLATE,
            {**context, "company": company, "contact": contact, "status": status.value,
             "promoted": registration.promoted_at is not None and status == Answer.REGISTERED
             and registration.answered_at is not None and registration.promoted_at >= registration.answered_at,
             "people": registration.people, "position": waiting_position(session, registration),
             "calendar_removed": contact.id in cancels,
             "links": _links(settings, contact, meeting),
             "referral_url": referral_url(settings, contact.public_id, meeting.id)  # type: ignore[arg-type]
             if status == Answer.REGISTERED else "",
             "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL)},
        )  # fmt: skip
        rows.append(
            _email_row(
                meeting=meeting,
                kind=kind,
                recipient=recipient,
                domain=domain,
                rendered=rendered,
                alternatives=alternatives,
                attachments=attachments,
            )  # fmt: skip
        )
    added = _enqueue(session, rows, now)
    for registration in pending:
        registration.confirmed_version = registration.version
        session.add(registration)
    session.flush()
    return added


def _own_cancels(
    session: Session, meeting: Meeting, recipients: Sequence[Recipient], *, settings: Settings,
    now: datetime,
) -> dict[int, bytes]:  # fmt: skip
    """Return, per contact, the METHOD:CANCEL of its company's own copy, one SEQUENCE above its last REQUEST."""
    if not recipients:
        return {}
    counts = own_cancellations(session, meeting, (r.company.id or 0 for r in recipients))
    sequences = {r.company.id or 0: cancel_sequence(meeting, counts.get(r.company.id or 0, 0))
                 for r in recipients}  # fmt: skip
    documents = _calendars(
        meeting, recipients, settings=settings, now=now, method="CANCEL", sequences=sequences
    )
    return {r.contact.id or 0: ics for r, ics in zip(recipients, documents, strict=True)}


def queue_removals(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> int:
    """Queue the METHOD:CANCEL of its own copy to each company staff took off the list whose copy is live.

    A copy is live when the company was invited and its latest calendar document from us is not
    a CANCEL, unless it declined without ever holding a seat (its calendar knows it is not
    coming). Keyed ``retrait-<company>-v<k>``: a rerun queues nothing twice.
    """
    if meeting.status != MeetingStatus.INVITED or meeting.starts_at <= now:
        return 0
    removed = email_recipients(session=session, meeting=meeting, removed=True)
    removed = [r for r in removed if r.registration.invited_at is not None]
    if not removed:
        return 0
    latest = _latest_documents(session, meeting, (r.company.id or 0 for r in removed))
    # Put back on the list and invited again after its last cancel: its copy lives again.
    reinvited = _invited_again(
        session, meeting, [r.company.id or 0 for r in removed if r.registration.rounds]
    )
    live = [
        r for r in removed
        if latest.get(r.company.id or 0) == "seat"
        or ((latest.get(r.company.id or 0) != "cancelled" or r.company.id in reinvited)
            and r.registration.status != Answer.DECLINED)
    ]  # fmt: skip
    cancels = _own_cancels(session, meeting, live, settings=settings, now=now)
    context = {"meeting": meeting_context(meeting, settings, _host(session, meeting)),
               "programme": programme_context(settings)}  # fmt: skip
    domain = sender_domain(settings)
    rows = []
    for recipient in live:
        kind = f"{WITHDRAWAL_KIND}-{recipient.company.id}-v{recipient.registration.version}"
        rows.append(_cancellation_row(meeting, recipient, cancels[recipient.contact.id or 0],
                                      kind=kind, removed=True, context=context, settings=settings,
                                      templates=templates, domain=domain))  # fmt: skip
    return _enqueue(session, rows, now)


def queue_cancellations(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> int:
    """Queue the METHOD:CANCEL (SEQUENCE above the last REQUEST) to everyone who was invited and did not decline."""
    recipients = [
        r for r in email_recipients(session=session, meeting=meeting)
        if r.registration.status != Answer.DECLINED and r.registration.invited_at is not None
    ]  # fmt: skip
    context = {"meeting": meeting_context(meeting, settings, _host(session, meeting)),
               "programme": programme_context(settings)}  # fmt: skip
    domain = sender_domain(settings)
    rows = []
    cancels = _calendars(meeting, recipients, settings=settings, now=now, method="CANCEL",
                         sequences=_request_sequences(session, meeting, recipients))  # fmt: skip
    for recipient, ics in zip(recipients, cancels, strict=True):
        rows.append(_cancellation_row(meeting, recipient, ics, kind=f"annulation-seq{meeting.sequence}",
                                      removed=False, context=context, settings=settings,
                                      templates=templates, domain=domain))  # fmt: skip
    return _enqueue(session, rows, now)


def _cancellation_row(
    meeting: Meeting,
    recipient: Recipient,
    ics: bytes,
    *,
    kind: str,
    removed: bool,
    context: dict[str, Any],
    settings: Settings,
    templates: MailTemplates,
    domain: str,
) -> dict[str, Any]:
    """The outbox row of one cancellation e-mail: French text, and the METHOD:CANCEL of that copy."""
    contact = recipient.contact
    alternatives, attachments = invitation_email_parts(
        ics, filename="annulation.ics", method="CANCEL"
    )
    rendered = templates.render(
        CANCELLATION_TEMPLATE,
        {**context, "company": recipient.company, "contact": contact, "removed": removed,
         "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL)},
    )  # fmt: skip
    return _email_row(meeting=meeting, kind=kind, recipient=recipient, domain=domain,
                      rendered=rendered, alternatives=alternatives, attachments=attachments)  # fmt: skip


def _upcoming(
    session: Session, *, after: datetime, before: datetime, meeting_id: int | None = None
) -> list[Meeting]:
    query = (
        select(Meeting) if meeting_id is None else select(Meeting).where(Meeting.id == meeting_id)
    )
    return list(
        session.exec(
            query.where(
                Meeting.status == MeetingStatus.INVITED,
                col(Meeting.starts_at) > after,
                col(Meeting.starts_at) <= before,
            ).order_by(col(Meeting.starts_at))
        ).all()
    )


def queue_week_reminders(
    *, session: Session, settings: Settings, templates: MailTemplates, now: datetime,
    meeting_id: int | None = None,
) -> int:  # fmt: skip
    """Queue the reminder e-mail to companies that have not answered, once, in the week before each meeting."""
    added = 0
    for meeting in _upcoming(session, after=now, before=now + WEEK_BEFORE, meeting_id=meeting_id):
        context = {"meeting": meeting_context(meeting, settings, _host(session, meeting)),
                   "programme": programme_context(settings)}  # fmt: skip
        domain = sender_domain(settings)
        rows = []
        for recipient in email_recipients(
            session=session, meeting=meeting, statuses=[Answer.NO_ANSWER]
        ):
            contact = recipient.contact
            rendered = templates.render(
                REMINDER_TEMPLATE,
                {**context, "company": recipient.company, "contact": contact,
                 "links": _links(settings, contact, meeting),
                 "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL)},
            )  # fmt: skip
            rows.append(
                _email_row(
                    meeting=meeting,
                    kind="rappel-semaine",
                    recipient=recipient,
                    domain=domain,
                    rendered=rendered,
                )  # fmt: skip
            )
        added += _enqueue(session, rows, now)
    return added


def _mobile(phone: str | None) -> str | None:
    """Return the number in E.164 when it is a mobile (SMS can reach it), else None."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, "FR")
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # ARCEP's fiction range (06 39 98…) is a mobile block libphonenumber does not know.
    if kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ) or e164.startswith("+336399"):
        return e164
    return None


def queue_day_before_sms(
    *, session: Session, settings: Settings, templates: SmsTemplates, now: datetime,
    meeting_id: int | None = None,
) -> int:  # fmt: skip
    """Queue the SMS reminder to each registered contact with a mobile number, for tomorrow's meetings."""
    tz = settings.tz
    tomorrow = (now.astimezone(tz) + timedelta(days=1)).date()
    start = datetime.combine(tomorrow, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(tomorrow + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    added = 0
    domain = sender_domain(settings)
    for meeting in _upcoming(
        session,
        after=max(now, start - timedelta(microseconds=1)),
        before=end,
        meeting_id=meeting_id,
    ):
        if meeting.starts_at < start:
            continue
        rows = session.exec(
            select(Registration, Company, Contact)
            .join(Company, col(Company.id) == col(Registration.company_id))
            .join(Contact, col(Contact.company_id) == col(Company.id))
            .where(
                Registration.meeting_id == meeting.id,
                Registration.status == Answer.REGISTERED,
                col(Registration.removed).is_(False),
                col(Contact.phone).is_not(None),
                col(Contact.phone_invalid_at).is_(None),
                sa.or_(
                    col(Registration.contact_id).is_(None),
                    col(Registration.contact_id) == col(Contact.id),
                ),
            )
        ).all()
        refused = opted_out_contact_ids(
            session=session,
            contact_ids=[c.id for _, _, c in rows if c.id is not None],
            channel=Channel.SMS,
        )
        day, hour = french_date(meeting.starts_at, tz)
        outgoing = []
        for registration, company, contact in rows:
            mobile = _mobile(contact.phone)
            if contact.id in refused or mobile is None:
                continue
            body = templates.render(
                REMINDER_TEMPLATE,
                {"title": meeting.title, "day": day, "hour": hour, "place": meeting.place,
                 "officer_phone": settings.officer_phone, "programme": programme_context(settings)},
            )  # fmt: skip
            outgoing.append(
                _row(
                    meeting=meeting,
                    kind=f"rappel-veille-{meeting.starts_at.astimezone(tz).date().isoformat()}",
                    recipient=Recipient(registration, company, contact),
                    channel=Channel.SMS,
                    to=mobile,
                    content=prepared_sms(body),
                    domain=domain,
                )  # fmt: skip
            )
        added += _enqueue(session, outgoing, now)
    return added


def queue_referral_invitations(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> int:
    """Queue « X vous invite… » to each referred company not invited yet (unless it refuses e-mail)."""
    if meeting.status != MeetingStatus.INVITED or meeting.starts_at <= now:
        return 0
    referrals = session.exec(
        select(Referral).where(
            Referral.meeting_id == meeting.id, col(Referral.invited_at).is_(None)
        )
    ).all()
    if not referrals:
        return 0
    referrers = {}
    for referral in referrals:
        by = session.get(Company, referral.referrer_company_id)
        referrers[referral.company_id] = by.name if by else ""
    recipients = [
        r for r in email_recipients(session=session, meeting=meeting, company_ids=list(referrers))
        if r.contact.id in {referral.contact_id for referral in referrals}
    ]  # fmt: skip
    added = queue_invitations(
        session=session, meeting=meeting, recipients=recipients, settings=settings,
        templates=templates, now=now, referrers=referrers,
    )  # fmt: skip
    for referral in referrals:
        referral.invited_at = now  # opted-out ones too: they are never to be written to
        session.add(referral)
    session.flush()
    return added


def catch_up(
    *, session: Session, settings: Settings, templates: MailTemplates, now: datetime,
    meeting_id: int | None = None,
) -> dict[str, int]:  # fmt: skip
    """Do what answers and referrals call for and no run did yet: promotions, own-copy cancellations, confirmations, referred invitations.

    Run it once per meeting in its own transaction (``lock_meeting`` comes first); a rerun finds
    everything done and queues nothing.
    """
    if meeting_id is None:
        raise ValueError("catch_up works one meeting at a time: give meeting_id")
    lock_meeting(session, meeting_id)
    meeting = session.get(Meeting, meeting_id)
    counts = {"promoted": 0, "confirmations": 0, "referral_invitations": 0, "removals": 0}
    if meeting is None:
        return counts
    counts["promoted"] = len(promote_waiting(session=session, meeting=meeting, now=now))
    counts["removals"] = queue_removals(
        session=session, meeting=meeting, settings=settings, templates=templates, now=now
    )
    counts["referral_invitations"] = queue_referral_invitations(
        session=session, meeting=meeting, settings=settings, templates=templates, now=now
    )
    counts["confirmations"] = queue_answer_confirmations(
        session=session, meeting=meeting, settings=settings, templates=templates, now=now
    )
    return counts


def open_meeting_ids(*, session: Session, now: datetime) -> list[int]:
    """Return the meetings still taking answers or with messages to catch up (invited, not yet started)."""
    return [
        m for m in session.exec(
            select(Meeting.id).where(Meeting.status == MeetingStatus.INVITED, col(Meeting.starts_at) > now)
            .order_by(col(Meeting.id))
        ).all() if m is not None
    ]  # fmt: skip
