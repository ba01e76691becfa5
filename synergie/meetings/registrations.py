"""Answers to a meeting: capacity in people, a first-come-first-served waiting list, promotions, under a lock.

Every function that reads the seats left and then writes must run after ``lock_meeting`` in
the same transaction: two answers at the same instant would otherwise both see the last seat
free and both take it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.enums import Answer, MeetingStatus
from models.tables import Company, Contact, Meeting, Registration
from synergie.calendar.itip import InvitationReply, parse_reply
from synergie.meetings.copies import own_cancellations, request_sequence

__all__ = [
    "MEETING_LOCK",
    "AnswerOutcome",
    "AnswerRefused",
    "CalendarReplyOutcome",
    "find_meeting_id",
    "lock_meeting",
    "promote_waiting",
    "record_answer",
    "record_calendar_reply",
    "registered_people",
    "waiting_position",
]

logger = logging.getLogger(__name__)

# The class of PostgreSQL advisory locks that serialise answers, one lock per meeting id.
MEETING_LOCK = 20_261_130


class AnswerRefused(ValueError):
    """An answer the meeting cannot take (started, cancelled, too many people); French message."""


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What an answer changed: the company's registration, its place in line, who was promoted."""

    registration: Registration
    changed: bool
    position: int | None = None
    promoted: list[Registration] = field(default_factory=list)


def lock_meeting(session: Session, meeting_id: int) -> None:
    """Hold the meeting's lock until the transaction ends: answers to one meeting go one at a time.

    Call it first in the transaction. PostgreSQL: a transaction-scoped advisory lock per
    meeting. SQLite: a first write statement takes the database's write lock (BEGIN IMMEDIATE
    on a ``models.db.write_connection``); a read before it could later fail to upgrade.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:kind, :meeting)"),
            {"kind": MEETING_LOCK, "meeting": meeting_id},
        )
    else:
        session.execute(sa.text("UPDATE meeting SET id = id WHERE id = :id"), {"id": meeting_id})


def registered_people(session: Session, meeting_id: int) -> int:
    """Return the number of people registered for the meeting."""
    total = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(col(Registration.people)), 0)).where(
            col(Registration.meeting_id) == meeting_id,
            col(Registration.status) == Answer.REGISTERED,
            col(Registration.removed).is_(False),
        )
    ).scalar_one()
    return int(total)


def waiting_position(session: Session, registration: Registration) -> int | None:
    """Return the 1-based place of a waiting registration in its meeting's line, else None."""
    if registration.status != Answer.WAITING or registration.waiting_since is None:
        return None
    ahead = session.execute(
        sa.select(sa.func.count()).where(
            col(Registration.meeting_id) == registration.meeting_id,
            col(Registration.status) == Answer.WAITING,
            col(Registration.removed).is_(False),
            sa.or_(
                col(Registration.waiting_since) < registration.waiting_since,
                sa.and_(
                    col(Registration.waiting_since) == registration.waiting_since,
                    col(Registration.id) < registration.id,
                ),
            ),
        )
    ).scalar_one()
    return int(ahead) + 1


def _check_open(meeting: Meeting, now: datetime) -> None:
    if meeting.status == MeetingStatus.CANCELLED:
        raise AnswerRefused("Cette rencontre a été annulée : il n'est plus possible d'y répondre.")
    if meeting.status == MeetingStatus.HELD or now >= meeting.starts_at:
        raise AnswerRefused(
            "Cette rencontre a commencé ou a eu lieu : la réponse ne peut plus être modifiée."
        )


def record_answer(
    *,
    session: Session,
    meeting: Meeting,
    registration: Registration,
    answer: Answer,
    people: int,
    note: str | None,
    contact_id: int | None,
    now: datetime,
) -> AnswerOutcome:
    """Record a company's answer (registered = "je viens"); a yes beyond capacity waits in line.

    The caller holds ``lock_meeting``. A registered company that withdraws or lowers its
    number frees seats, which go to the first waiting companies that fit, each exactly once.
    """
    _check_open(meeting, now)
    if answer not in (Answer.REGISTERED, Answer.DECLINED, Answer.MAYBE):
        raise AnswerRefused(
            "Réponse inconnue : choisissez « Je viens », « Je ne viens pas » ou « Peut-être »."
        )
    if registration.removed:
        raise AnswerRefused(
            "Cette invitation n'est plus valable : écrivez-nous pour en savoir plus."
        )
    note = (note or "").strip()[:1000] or None
    previous = Answer(registration.status)
    if answer == Answer.REGISTERED:
        if not 1 <= people <= meeting.per_company:
            raise AnswerRefused(
                f"Indiquez un nombre de personnes entre 1 et {meeting.per_company} "
                "(la limite par entreprise)."
            )
    else:
        people = 0
    if (previous, registration.people, registration.note) == (answer, people, note) or (
        previous == Answer.WAITING
        and answer == Answer.REGISTERED
        and registration.people == people
        and registration.note == note
    ):
        # The same answer twice (a double click, a reload): nothing changes, nothing is resent.
        return AnswerOutcome(registration, False, waiting_position(session, registration))
    status: Answer = answer
    if answer == Answer.REGISTERED:
        others = registered_people(session, meeting.id) - (  # type: ignore[arg-type]
            registration.people if previous == Answer.REGISTERED else 0
        )
        free = meeting.capacity - others
        if previous == Answer.WAITING:
            # Keep its place in line; it is promoted below if it fits now.
            status = Answer.WAITING
        elif people > free:
            if previous == Answer.REGISTERED:
                raise AnswerRefused(
                    f"Il ne reste que {max(free - registration.people, 0)} place(s) de plus : "
                    f"votre inscription reste à {registration.people} personne(s)."
                )
            status = Answer.WAITING
            registration.waiting_since = now
    if status != Answer.WAITING:
        registration.waiting_since = None
    registration.status = status
    registration.people = people
    registration.note = note
    registration.contact_id = contact_id or registration.contact_id
    registration.answered_at = now
    registration.updated_at = now
    registration.version += 1
    session.add(registration)
    session.flush()
    promoted = promote_waiting(session=session, meeting=meeting, now=now)
    logger.info(
        "meeting %s: company %s answered %s (%d people), %d promoted",
        meeting.id, registration.company_id, registration.status, people, len(promoted),
    )  # fmt: skip
    return AnswerOutcome(registration, True, waiting_position(session, registration), promoted)


def promote_waiting(*, session: Session, meeting: Meeting, now: datetime) -> list[Registration]:
    """Give the free seats to the waiting companies that fit, first come first served; return them.

    The caller holds ``lock_meeting``: a promotion happens once, and never beyond capacity.
    """
    if (
        meeting.status not in (MeetingStatus.PLANNED, MeetingStatus.INVITED)
        or now >= meeting.starts_at
    ):
        return []
    free = meeting.capacity - registered_people(session, meeting.id)  # type: ignore[arg-type]
    if free <= 0:
        return []
    line = session.exec(
        select(Registration)
        .where(
            Registration.meeting_id == meeting.id,
            Registration.status == Answer.WAITING,
            col(Registration.removed).is_(False),
        )
        .order_by(col(Registration.waiting_since), col(Registration.id))
    ).all()
    promoted = []
    for waiting in line:
        if waiting.people > free:
            continue  # too many for the seats left: the next one in line may fit
        waiting.status = Answer.REGISTERED
        waiting.waiting_since = None
        waiting.promoted_at = now
        waiting.updated_at = now
        waiting.version += 1
        session.add(waiting)
        free -= waiting.people
        promoted.append(waiting)
        if free <= 0:
            break
    session.flush()
    return promoted


# An iTIP REPLY's PARTSTAT, as an answer to a meeting.
PARTSTAT_ANSWERS = {
    "ACCEPTED": Answer.REGISTERED,
    "DECLINED": Answer.DECLINED,
    "TENTATIVE": Answer.MAYBE,
}


@dataclass(frozen=True, slots=True)
class CalendarReplyOutcome:
    """What a calendar's answer did: the answer's outcome, whose it was, and whether it was stale."""

    outcome: AnswerOutcome
    meeting_id: int
    company_id: int
    company_name: str
    contact_public_id: str
    attendee: str
    stale: bool = False


def find_meeting_id(session: Session, uid: str) -> int | None:
    """Return the number of the meeting whose invitations carry this UID, or None."""
    return session.exec(select(Meeting.id).where(Meeting.uid == uid.strip())).first()


def record_calendar_reply(
    *, session: Session, data: bytes | InvitationReply, now: datetime
) -> CalendarReplyOutcome:
    """Record an answer read back from a calendar (an iTIP REPLY, e.g. from the mailbox) like a portal answer.

    ACCEPTED is « je viens » (the people already registered, else 1), DECLINED « je ne viens
    pas », TENTATIVE « peut-être »: the same capacity, waiting list and promotions as the portal,
    under the meeting's lock. The meeting is found by the REPLY's UID, the company by the
    attendee's address among the invited companies' contacts. A reply to an older version of the
    company's copy (a lower SEQUENCE: another date, or a copy cancelled since) is stale and
    changes nothing; the same answer twice changes nothing either. Raises InvalidReply for an
    unreadable document, AnswerRefused (French) when it matches no invitation or the meeting no
    longer takes answers (cancelled, started, the company taken off the list).
    """
    reply = data if isinstance(data, InvitationReply) else parse_reply(data)
    meeting_id = find_meeting_id(session, reply.uid)
    if meeting_id is None:
        raise AnswerRefused(
            f"Aucune rencontre ne porte l'identifiant {reply.uid} : réponse ignorée."
        )
    lock_meeting(session, meeting_id)  # first: the seats are read below
    meeting = session.get(Meeting, meeting_id)
    assert meeting is not None
    session.refresh(meeting)  # as it is under the lock, not as an earlier read left it
    address = reply.attendee.strip().lower()
    found = session.exec(
        select(Registration, Contact, Company)
        .join(Contact, col(Contact.company_id) == col(Registration.company_id))
        .join(Company, col(Company.id) == col(Registration.company_id))
        .where(
            Registration.meeting_id == meeting_id,
            sa.func.lower(sa.func.trim(col(Contact.email))) == address,
        )
        .order_by(col(Registration.removed), col(Contact.id))
    ).first()
    if found is None:
        raise AnswerRefused(
            f"{reply.attendee} n'est le contact d'aucune entreprise invitée à la rencontre "
            f"n° {meeting_id} « {meeting.title} » : rien n'est enregistré."
        )
    registration, contact, company = found
    session.refresh(registration)
    # Before the staleness: an answer to a cancelled or started meeting, or from a company taken
    # off the list, is for staff to read, whichever version it answers.
    _check_open(meeting, now)
    if registration.removed:
        raise AnswerRefused(
            f"{company.name} a été retirée de la liste des invités de cette rencontre : "
            "sa réponse n'est pas enregistrée."
        )
    cancellations = own_cancellations(session, meeting, [company.id or 0]).get(company.id or 0, 0)

    def result(outcome: AnswerOutcome, *, stale: bool = False) -> CalendarReplyOutcome:
        return CalendarReplyOutcome(
            outcome, meeting_id, company.id or 0, company.name, contact.public_id, address, stale
        )

    if reply.sequence < request_sequence(meeting, cancellations):
        unchanged = AnswerOutcome(registration, False, waiting_position(session, registration))
        return result(unchanged, stale=True)
    answer = PARTSTAT_ANSWERS[reply.partstat]
    people = max(registration.people, 1) if answer == Answer.REGISTERED else 0
    return result(
        record_answer(
            session=session,
            meeting=meeting,
            registration=registration,
            answer=answer,
            people=min(people, meeting.per_company),
            note=reply.comment or registration.note,
            contact_id=contact.id,
            now=now,
        )  # fmt: skip
    )
