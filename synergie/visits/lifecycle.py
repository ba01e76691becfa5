"""Site visits as database verbs: book, reschedule, cancel, read answers, close, and remind."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.companies import move_company
from models.enums import Activity, CallOutcome, Channel, Partstat, Stage, VisitStatus
from models.tables import CallTask, Company, Contact, StaffMember, TimeEntry, Visit
from synergie import french
from synergie.calendar.itip import (
    Invitation,
    Participant,
    build_cancel,
    build_request,
    invitation_email_parts,
    new_visit_uid,
    parse_reply,
)
from synergie.listing.rows import RowRejected, clean_phone
from synergie.mailing.campaigns import sender_domain
from synergie.messaging.links import unsubscribe_url
from synergie.messaging.optouts import opted_out_contact_ids
from synergie.messaging.rendering import MailTemplates, SmsTemplates, programme_context
from synergie.messaging.sending import enqueue_prepared, prepared_email, prepared_sms
from synergie.settings import Settings
from synergie.visits.diary import (
    DEFAULT_WEEKLY_HOURS,
    Booking,
    BookingConflict,
    Diary,
    Slot,
    StaffAvailability,
    VisitRules,
    WorkWindow,
    check_booking,
)

__all__ = [
    "INVITATION_TEMPLATE",
    "CANCELLATION_TEMPLATE",
    "REMINDER_TEMPLATE",
    "VISIT_HOURS",
    "BookedVisit",
    "Reminder",
    "ReplyOutcome",
    "VisitError",
    "VisitNotFound",
    "add_staff",
    "book_chosen_slot",
    "book_interested",
    "book_visit",
    "cancel_visit",
    "close_visit",
    "due_reminders",
    "enqueue_reminders",
    "find_visit",
    "interested_companies",
    "load_diary",
    "load_staff",
    "propose",
    "record_reply",
    "reschedule_visit",
    "slot_at",
    "staff_availability",
    "visit_rules",
]

logger = logging.getLogger(__name__)

INVITATION_TEMPLATE = "invitation-visite"
CANCELLATION_TEMPLATE = "annulation-visite"
REMINDER_TEMPLATE = "rappel-visite"
# Staff time of one visit in the ledger: 1 h of preparation + 1 h on site, one VISIT entry.
# The travel buffer is not counted: it is the preparation hour's trip back (see scheduling).
VISIT_HOURS = 2.0


class VisitError(Exception):
    """A visit operation a person asked for cannot be done; the message says why, in French."""


class VisitNotFound(VisitError, LookupError):
    """No visit answers to the given company or invitation UID."""


@dataclass(frozen=True, slots=True)
class BookedVisit:
    """What booking (or rescheduling, cancelling) did: the visit row and whether a message was queued."""

    visit: Visit
    company: str
    enqueued: bool


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What an iTIP reply changed on a visit."""

    visit: Visit
    partstat: Partstat
    cancelled: bool
    stale: bool


@dataclass(frozen=True, slots=True)
class Reminder:
    """One SMS reminder due: the visit, its contact's E.164 number and the rendered context."""

    visit_id: int
    uid: str
    contact_id: int
    company_id: int
    phone: str
    day: date
    context: dict[str, Any]


# --- staff and diary ---------------------------------------------------------------------


def visit_rules(settings: Settings) -> VisitRules:
    """Return the visit rules the settings describe (buffer, notice, horizon)."""
    return VisitRules(
        travel_buffer=timedelta(minutes=settings.visit_travel_buffer_minutes),
        notice_working_days=settings.visit_notice_working_days,
        horizon=timedelta(days=settings.visit_horizon_days),
    )


def _clock_time(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes or 0))


def staff_availability(member: StaffMember, *, timezone: str) -> StaffAvailability:
    """Return the availability of one staff row; empty ``weekly_hours`` means the default week."""
    hours: dict[int, tuple[WorkWindow, ...]] = (
        {
            int(day): tuple(
                WorkWindow(_clock_time(start), _clock_time(end)) for start, end in windows
            )
            for day, windows in member.weekly_hours.items()
        }
        if member.weekly_hours
        else dict(DEFAULT_WEEKLY_HOURS)
    )
    return StaffAvailability(
        staff_id=member.id,  # type: ignore[arg-type]
        name=member.name,
        weekly_hours=hours,
        days_off=frozenset(date.fromisoformat(day) for day in member.days_off),
        timezone=timezone,
    )


def load_staff(*, session: Session, timezone: str) -> list[StaffAvailability]:
    """Return the availability of every active staff member, in id order."""
    members = session.exec(
        select(StaffMember).where(col(StaffMember.active)).order_by(col(StaffMember.id))
    ).all()
    return [staff_availability(member, timezone=timezone) for member in members]


def _booking(visit: Visit) -> Booking:
    return Booking(
        visit.staff_id, visit.reserved_start, visit.reserved_end, visit.starts_at, visit.ends_at,
        visit.company_id,
    )  # fmt: skip


DIARY_LOCK = 20_261_129  # the PostgreSQL advisory lock that serialises bookings


def lock_diaries(session: Session) -> None:
    """Hold the booking lock until the transaction ends, so two runs never book the same slot.

    The diary is read, then written: without the lock two runs at once (the schedule and
    a CLI run) could each see a slot free and both take it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": DIARY_LOCK})
    else:
        # SQLite: a first write statement takes the database's write lock until commit
        # (others wait on busy_timeout); it must come before the diary is read.
        session.execute(sa.text("UPDATE staff_member SET id = id WHERE 0 = 1"))


def load_diary(
    *, session: Session, settings: Settings, exclude: int | None = None, for_booking: bool = False
) -> Diary:
    """Return a diary of every active staff member holding the booked visits (but ``exclude``).

    ``for_booking`` takes the booking lock first, for callers that will write to it.
    """
    if for_booking:
        lock_diaries(session)
    staff = load_staff(session=session, timezone=settings.timezone)
    if not staff:
        raise VisitError(
            "Aucun membre de l'équipe n'est enregistré : ajoutez-en un avec "
            "« synergie staff add NOM --email ADRESSE »."
        )
    known = {member.staff_id for member in staff}
    visits = session.exec(select(Visit).where(Visit.status == VisitStatus.BOOKED)).all()
    bookings = [_booking(v) for v in visits if v.id != exclude and v.staff_id in known]
    return Diary(staff=staff, rules=visit_rules(settings), bookings=bookings)


def add_staff(*, session: Session, name: str, email: str, phone: str | None = None) -> StaffMember:
    """Create and return a staff member with the default week (Mon–Fri 9:00–12:30, 13:30–17:30)."""
    if not name.strip() or "@" not in email:
        raise VisitError("Indiquez un nom et une adresse e-mail valide (--email).")
    number = None
    if phone and phone.strip():
        try:
            number = clean_phone(phone)
        except RowRejected as exc:
            raise VisitError(f"Téléphone refusé : {exc}.") from exc
    hours = {
        str(day): [[f"{w.start:%H:%M}", f"{w.end:%H:%M}"] for w in windows]
        for day, windows in DEFAULT_WEEKLY_HOURS.items()
    }
    member = StaffMember(name=name.strip(), email=email.strip(), phone=number, weekly_hours=hours)
    session.add(member)
    session.flush()
    return member


def slot_at(visit_start: datetime, *, staff_id: int, rules: VisitRules) -> Slot:
    """Return the slot of a visit starting at ``visit_start`` for one staff member."""
    if visit_start.tzinfo is None:
        raise VisitError("Donnez l'heure du créneau avec son fuseau (ex. 2026-11-12T10:00+01:00).")
    return Slot(
        staff_id,
        visit_start,
        visit_start + rules.visit,
        visit_start - rules.preparation,
        visit_start + rules.visit + rules.travel_buffer,
    )


def book_chosen_slot(diary: Diary, visit_start: datetime, *, now: datetime) -> Booking:
    """Return the booking of ``visit_start`` with the first staff member free then; BookingConflict otherwise."""
    problem: BookingConflict | None = None
    for member in diary.staff:
        slot = slot_at(visit_start, staff_id=member.staff_id, rules=diary.rules)  # type: ignore[arg-type]
        candidate = Booking(
            slot.staff_id, slot.reserved_start, slot.reserved_end, slot.visit_start, slot.visit_end
        )
        try:
            check_booking(candidate, member, diary.rules, diary.bookings(member.staff_id), now=now)
        except BookingConflict as exc:
            problem = problem or exc
            continue
        return diary.book(slot, now=now)
    raise problem or BookingConflict("Aucun membre de l'équipe n'est disponible à cette heure.")


# --- selection -----------------------------------------------------------------------------


def interested_companies(*, session: Session) -> list[Company]:
    """Return companies at ``called`` whose latest answered call is « interested » and with no booked visit."""
    latest = (
        select(CallTask.company_id, sa.func.max(CallTask.id).label("last_id"))
        .where(col(CallTask.outcome).is_not(None))
        .group_by(col(CallTask.company_id))
        .subquery()
    )
    booked = sa.exists().where(
        col(Visit.company_id) == col(Company.id), col(Visit.status) == VisitStatus.BOOKED
    )
    query = (
        select(Company)
        .join(latest, latest.c.company_id == col(Company.id))
        .join(CallTask, col(CallTask.id) == latest.c.last_id)
        .where(
            col(Company.stage) == Stage.CALLED,
            col(CallTask.outcome) == CallOutcome.INTERESTED,
            ~booked,
        )
        .order_by(col(Company.id))
    )
    return list(session.exec(query).all())


def _visit_contact(session: Session, company: Company) -> Contact | None:
    """Return whom to invite: the contact of the latest call if it has an e-mail, else the first one that does."""
    call = session.exec(
        select(CallTask)
        .where(CallTask.company_id == company.id, col(CallTask.outcome).is_not(None))
        .order_by(col(CallTask.id).desc())
    ).first()
    contacts = session.exec(
        select(Contact).where(Contact.company_id == company.id).order_by(col(Contact.id))
    ).all()
    usable = [c for c in contacts if c.email and c.email_invalid_at is None]
    for contact in usable:
        if call is not None and contact.id == call.contact_id:
            return contact
    if usable:
        return usable[0]
    return contacts[0] if contacts else None


def find_visit(*, session: Session, siret: str, status: VisitStatus = VisitStatus.BOOKED) -> Visit:
    """Return the latest visit of the company with this SIRET at ``status``, or raise VisitNotFound."""
    visit = session.exec(
        select(Visit)
        .join(Company, col(Company.id) == col(Visit.company_id))
        .where(Company.siret == siret.replace(" ", ""), Visit.status == status)
        .order_by(col(Visit.id).desc())
    ).first()
    if visit is None:
        raise VisitNotFound(f"Aucune visite « {_STATUS_FR[status]} » pour le SIRET {siret}.")
    return visit


_STATUS_FR = {
    VisitStatus.BOOKED: "planifiée",
    VisitStatus.CANCELLED: "annulée",
    VisitStatus.DONE: "faite",
}


# --- messages ------------------------------------------------------------------------------


def _french_date(moment: datetime, tz: ZoneInfo) -> tuple[str, str]:
    """Return (« jeudi 12 novembre 2026 », « 10 h 00 ») for an instant, in ``tz``."""
    local = moment.astimezone(tz)
    return french.day(local.date()), french.clock(local)


def _location(company: Company) -> str:
    place = " ".join(part for part in (company.postcode, company.commune) if part)
    return ", ".join(part for part in (company.address, place) if part) or company.name


def _invitation(
    visit: Visit, company: Company, contact: Contact, staff: StaffMember, settings: Settings
) -> Invitation:
    return Invitation.for_visit(
        uid=visit.uid,
        start=visit.starts_at,
        company=company.name,
        location=_location(company),
        contact=Participant(contact.name or company.name, contact.email or ""),
        officer=Participant(staff.name, staff.email),
        officer_phone=staff.phone or settings.officer_phone,
        programme_name=settings.programme_name,
        sequence=visit.sequence,
        timezone=settings.timezone,
    )


def _enqueue_invitation(
    session: Session,
    visit: Visit,
    *,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
    cancel: bool = False,
) -> bool:
    """Render and enqueue the REQUEST (or CANCEL) e-mail of the visit's current SEQUENCE; True if queued."""
    company = session.get(Company, visit.company_id)
    contact = session.get(Contact, visit.contact_id) if visit.contact_id else None
    staff = session.get(StaffMember, visit.staff_id)
    if company is None or staff is None or contact is None or not contact.email:
        logger.warning("visit %s: no contact e-mail, invitation not sent", visit.uid)
        return False
    if contact.email_invalid_at is not None or opted_out_contact_ids(
        session=session,
        contact_ids=[contact.id],  # type: ignore[list-item]
        channel=Channel.EMAIL,
    ):
        logger.info("visit %s: contact %s refuses e-mail, nothing queued", visit.uid, contact.id)
        return False
    invitation = _invitation(visit, company, contact, staff, settings)
    ics = build_cancel(invitation, now=now) if cancel else build_request(invitation, now=now)
    alternatives, attachments = invitation_email_parts(
        ics, filename="annulation.ics" if cancel else "invitation.ics"
    )
    day, hour = _french_date(visit.starts_at, settings.tz)
    rendered = templates.render(
        CANCELLATION_TEMPLATE if cancel else INVITATION_TEMPLATE,
        {
            "company": company,
            "contact": contact,
            "programme": programme_context(settings),
            "visit": {"day": day, "hour": hour, "location": _location(company),
                      "officer": staff.name, "updated": visit.sequence > 0},
            # Invitations are transactional, but the layout's visible link stays: the contact
            # may still refuse e-mail; no List-Unsubscribe header is added (not a mailing).
            "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL),
        },
    )  # fmt: skip
    return enqueue_prepared(
        session.connection(),
        step=f"visite-{visit.uid}-seq{visit.sequence}",
        recipient=f"contact:{contact.id}",
        channel=Channel.EMAIL,
        to_address=contact.email,
        content=prepared_email(
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            to_name=contact.name or "",
            alternatives=alternatives,
            attachments=attachments,
        ),  # fmt: skip
        domain=sender_domain(settings),
        now=now,
        contact_id=contact.id,
        company_id=company.id,
    )


# --- booking life --------------------------------------------------------------------------


def book_visit(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    company: Company,
    now: datetime,
    actor: str,
    visit_start: datetime | None = None,
    diary: Diary | None = None,
) -> BookedVisit:
    """Book the earliest slot (or ``visit_start``, checked), move the company, queue the invitation."""
    if company.stage not in (Stage.CALLED, Stage.CONTACTED):
        raise VisitError(
            f"{company.name} n'attend pas de visite (étape « {company.stage} ») : seule une "
            "entreprise appelée et intéressée peut être visitée."
        )
    diary = diary or load_diary(session=session, settings=settings, for_booking=True)
    if visit_start is None:
        booking = diary.book_earliest(now=now, company_id=company.id)
    else:
        booking = book_chosen_slot(diary, visit_start, now=now)
    contact = _visit_contact(session, company)
    visit = Visit(
        uid=new_visit_uid(sender_domain(settings)),
        company_id=company.id,  # type: ignore[arg-type]
        contact_id=contact.id if contact else None,
        staff_id=booking.staff_id,  # type: ignore[arg-type]
        starts_at=booking.visit_start,
        ends_at=booking.visit_end,
        reserved_start=booking.reserved_start,
        reserved_end=booking.reserved_end,
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    session.flush()
    day, hour = _french_date(visit.starts_at, settings.tz)
    move_company(
        session=session, company=company, target=Stage.VISIT_SCHEDULED,
        why=f"visite réservée le {day} à {hour}", actor=actor, now=now,
    )  # fmt: skip
    queued = _enqueue_invitation(session, visit, settings=settings, templates=templates, now=now)
    return BookedVisit(visit=visit, company=company.name, enqueued=queued)


def book_interested(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
    actor: str,
) -> list[BookedVisit]:
    """Book the earliest slot for every interested company, one diary for the whole run."""
    lock_diaries(session)  # before choosing: another run may have just booked some of them
    companies = interested_companies(session=session)
    if not companies:
        return []
    diary = load_diary(session=session, settings=settings)
    return [
        book_visit(
            session=session,
            settings=settings,
            templates=templates,
            company=company,
            now=now,
            actor=actor,
            diary=diary,
        )  # fmt: skip
        for company in companies
    ]


def propose(*, session: Session, settings: Settings, now: datetime, count: int = 3) -> list[Slot]:
    """Return the ``count`` earliest free slots, at distinct times, across the team."""
    return load_diary(session=session, settings=settings).propose(now=now, count=count)


def _require_booked(visit: Visit) -> None:
    if visit.status != VisitStatus.BOOKED:
        raise VisitError(f"La visite {visit.uid} n'est plus planifiée ({visit.status}).")


def reschedule_visit(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    visit: Visit,
    now: datetime,
    actor: str,
    visit_start: datetime | None = None,
) -> BookedVisit:
    """Move a booked visit (to ``visit_start``, or the earliest other slot): same UID, SEQUENCE + 1, new REQUEST."""
    _require_booked(visit)
    if visit_start is None:
        # The visit stays in the diary, so the earliest free slot is another one.
        booking = load_diary(session=session, settings=settings, for_booking=True).book_earliest(
            now=now
        )
    else:
        diary = load_diary(session=session, settings=settings, exclude=visit.id, for_booking=True)
        booking = book_chosen_slot(diary, visit_start, now=now)
    visit.staff_id = booking.staff_id  # type: ignore[assignment]
    visit.starts_at, visit.ends_at = booking.visit_start, booking.visit_end
    visit.reserved_start, visit.reserved_end = booking.reserved_start, booking.reserved_end
    visit.sequence += 1
    visit.partstat = Partstat.NEEDS_ACTION
    visit.updated_at = now
    session.add(visit)
    session.flush()
    company = session.get(Company, visit.company_id)
    queued = _enqueue_invitation(session, visit, settings=settings, templates=templates, now=now)
    logger.info("visit %s rescheduled by %s (sequence %d)", visit.uid, actor, visit.sequence)
    return BookedVisit(visit=visit, company=company.name if company else "", enqueued=queued)


def cancel_visit(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    visit: Visit,
    now: datetime,
    actor: str,
    why: str = "visite annulée",
    notify: bool = True,
) -> BookedVisit:
    """Cancel a booked visit: free the slot, company back to ``called``, CANCEL with a higher SEQUENCE if ``notify``."""
    _require_booked(visit)
    visit.status = VisitStatus.CANCELLED
    visit.sequence += 1
    visit.updated_at = now
    session.add(visit)
    session.flush()
    company = session.get(Company, visit.company_id)
    if company is not None and company.stage == Stage.VISIT_SCHEDULED:
        move_company(
            session=session, company=company, target=Stage.CALLED, why=why, actor=actor, now=now
        )
    queued = notify and _enqueue_invitation(
        session, visit, settings=settings, templates=templates, now=now, cancel=True
    )
    return BookedVisit(visit=visit, company=company.name if company else "", enqueued=queued)


def record_reply(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    data: bytes,
    now: datetime,
    actor: str,
) -> ReplyOutcome:
    """Record an iTIP REPLY on its visit; DECLINED cancels it (slot freed, no CANCEL sent).

    InvalidReply if unreadable; VisitError, with nothing changed, when the answer does not come
    from the invited contact: anyone can write an .ics, only the invitee may answer it.
    """
    reply = parse_reply(data)
    visit = session.exec(select(Visit).where(Visit.uid == reply.uid)).first()
    if visit is None:
        raise VisitNotFound(f"Aucune visite ne porte l'identifiant {reply.uid} : réponse ignorée.")
    contact = session.get(Contact, visit.contact_id) if visit.contact_id else None
    invited = (contact.email or "").strip().lower() if contact else ""
    if not invited or reply.attendee != invited:
        logger.warning(
            "visit %s: reply from %s, not from the invitee, refused", visit.uid, reply.attendee
        )
        raise VisitError(
            f"Réponse refusée : elle vient de {reply.attendee}, qui n'est pas la personne invitée "
            f"à la visite {visit.uid} ({invited or 'aucune adresse connue'}). Rien n'a changé."
        )
    if reply.sequence < visit.sequence or visit.status != VisitStatus.BOOKED:
        # An answer to an older version (or to a closed visit) says nothing of the current one.
        return ReplyOutcome(visit=visit, partstat=visit.partstat, cancelled=False, stale=True)
    visit.partstat = Partstat(reply.partstat.lower())
    visit.updated_at = now
    if reply.comment:
        visit.notes = "\n".join(filter(None, [visit.notes, f"Réponse : {reply.comment}"]))[:4000]
    session.add(visit)
    session.flush()
    cancelled = False
    if visit.partstat == Partstat.DECLINED:
        cancel_visit(
            session=session, settings=settings, templates=templates, visit=visit, now=now,
            actor=actor, why=f"invitation refusée par {reply.attendee}", notify=False,
        )  # fmt: skip
        visit.partstat = Partstat.DECLINED
        session.add(visit)
        cancelled = True
    return ReplyOutcome(visit=visit, partstat=visit.partstat, cancelled=cancelled, stale=False)


def close_visit(
    *,
    session: Session,
    visit: Visit,
    notes: str,
    now: datetime,
    actor: str,
    timezone: str = "Europe/Paris",
) -> TimeEntry:
    """Mark the visit done with its notes, move the company to ``visited``, log 2 h of staff time."""
    _require_booked(visit)
    visit.status = VisitStatus.DONE
    visit.notes = notes.strip()[:4000] or visit.notes
    visit.updated_at = now
    session.add(visit)
    company = session.get(Company, visit.company_id)
    if company is None:
        raise VisitNotFound(f"L'entreprise de la visite {visit.uid} n'existe plus.")
    move_company(
        session=session, company=company, target=Stage.VISITED,
        why="visite faite", actor=actor, now=now,
    )  # fmt: skip
    entry = TimeEntry(
        activity=Activity.VISIT,
        hours=VISIT_HOURS,
        company_id=company.id,
        day=visit.starts_at.astimezone(ZoneInfo(timezone)).date(),
        actor=actor,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


# --- reminders -----------------------------------------------------------------------------


def due_reminders(*, session: Session, settings: Settings, day: date) -> list[Reminder]:
    """Return the SMS reminders for visits on ``day`` (local): booked, not declined, reachable by SMS."""
    tz = settings.tz
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = session.exec(
        select(Visit, Contact, Company, StaffMember)
        .join(Contact, col(Contact.id) == col(Visit.contact_id))
        .join(Company, col(Company.id) == col(Visit.company_id))
        .join(StaffMember, col(StaffMember.id) == col(Visit.staff_id))
        .where(
            Visit.status == VisitStatus.BOOKED,
            Visit.partstat != Partstat.DECLINED,
            col(Visit.starts_at) >= start,
            col(Visit.starts_at) < end,
            col(Contact.phone).is_not(None),
            col(Contact.phone_invalid_at).is_(None),
        )
        .order_by(col(Visit.starts_at))
    ).all()
    refused = opted_out_contact_ids(
        session=session, contact_ids=[contact.id for _, contact, _, _ in rows],  # type: ignore[misc]
        channel=Channel.SMS,
    )  # fmt: skip
    reminders = []
    for visit, contact, company, staff in rows:
        if contact.id in refused:
            continue
        try:
            phone = clean_phone(contact.phone or "")
        except RowRejected:
            phone = None
        if phone is None:
            continue
        when_day, hour = _french_date(visit.starts_at, tz)
        reminders.append(
            Reminder(
                visit_id=visit.id,  # type: ignore[arg-type]
                uid=visit.uid,
                contact_id=contact.id,  # type: ignore[arg-type]
                company_id=company.id,  # type: ignore[arg-type]
                phone=phone,
                day=day,
                context={
                    "company": company.name,
                    "day": when_day,
                    "hour": hour,
                    "officer": staff.name,
                    "officer_phone": staff.phone or settings.officer_phone,
                    "programme": programme_context(settings),
                },
            )  # fmt: skip
        )
    return reminders


def enqueue_reminders(
    *,
    session: Session,
    settings: Settings,
    reminders: Sequence[Reminder],
    templates: SmsTemplates,
    now: datetime,
) -> int:
    """Render and enqueue each reminder SMS under ``rappel-visite-<uid>-<date>``; return how many are new."""
    added = 0
    for reminder in reminders:
        added += enqueue_prepared(
            session.connection(),
            step=f"rappel-visite-{reminder.uid}-{reminder.day.isoformat()}",
            recipient=f"contact:{reminder.contact_id}",
            channel=Channel.SMS,
            to_address=reminder.phone,
            content=prepared_sms(templates.render(REMINDER_TEMPLATE, reminder.context)),
            domain=sender_domain(settings),
            now=now,
            contact_id=reminder.contact_id,
            company_id=reminder.company_id,
        )
    return added
