"""Meetings as database verbs: plan one, decide who is invited, move it, cancel it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.enums import Answer, MessageStatus, Stage
from models.tables import Company, Meeting, Message, Referral, Registration
from synergie.calendar.itip import meeting_uid
from synergie.meetings.registrations import lock_meeting, promote_waiting

__all__ = [
    "DEFAULT_AGENDA",
    "DEFAULT_LENGTH",
    "INVITED_STAGES",
    "MeetingError",
    "MeetingNotFound",
    "MeetingSummary",
    "add_guest",
    "add_meeting",
    "find_meeting",
    "french_date",
    "invited_companies",
    "meeting_place",
    "open_registrations",
    "remove_guest",
    "summarise",
]

logger = logging.getLogger(__name__)

DEFAULT_LENGTH = timedelta(hours=3)
DEFAULT_FORMAT = "World Café"
DEFAULT_AGENDA = (
    "Accueil et visite du site de l'entreprise hôte, découverte de son savoir-faire ; "
    "World Café « économie positive » : vos flux (déchets, matières, énergie) et ceux de vos "
    "voisins ; témoignage ; moment convivial."
)
# Companies of the campaign at these stages are invited (DESIGN.md: visited or later).
INVITED_STAGES = (Stage.VISITED, Stage.FLOWS_COLLECTED, Stage.PARTICIPANT, Stage.MEMBER)

_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


class MeetingError(Exception):
    """A meeting operation a person asked for cannot be done; the message says why, in French."""


class MeetingNotFound(MeetingError, LookupError):
    """No meeting has this number."""


def french_date(moment: datetime, tz: ZoneInfo) -> tuple[str, str]:
    """Return (« mardi 13 avril 2027 », « 18 h 00 ») for an instant, in ``tz``."""
    local = moment.astimezone(tz)
    number = "1er" if local.day == 1 else str(local.day)
    day = f"{_WEEKDAYS[local.weekday()]} {number} {_MONTHS[local.month - 1]} {local.year}"
    return day, f"{local.hour} h {local.minute:02d}"


def meeting_place(company: Company) -> str:
    """Return a company's address on one line, as the default place of a meeting it hosts."""
    town = " ".join(part for part in (company.postcode, company.commune) if part)
    return ", ".join(part for part in (company.name, company.address, town) if part)


def add_meeting(
    *,
    session: Session,
    title: str,
    starts_at: datetime,
    now: datetime,
    domain: str,
    ends_at: datetime | None = None,
    place: str | None = None,
    host: Company | None = None,
    capacity: int = 15,
    per_company: int = 2,
    agenda: str | None = None,
    meeting_format: str = DEFAULT_FORMAT,
    campaign_id: int | None = None,
) -> Meeting:
    """Plan a meeting (status planned) with a random UID; place defaults to the host's address."""
    if starts_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("starts_at and now must be timezone-aware")
    title = " ".join(title.split())
    if not title:
        raise MeetingError("Donnez un titre à la rencontre (--title).")
    if starts_at <= now:
        raise MeetingError("La rencontre doit avoir lieu dans le futur.")
    ends_at = ends_at or starts_at + DEFAULT_LENGTH
    if ends_at <= starts_at:
        raise MeetingError("La fin de la rencontre (--until) doit suivre son début.")
    if capacity < 1 or not 1 <= per_company <= capacity:
        raise MeetingError(
            "La capacité doit être d'au moins 1 personne, et le nombre de personnes par "
            "entreprise entre 1 et la capacité."
        )
    where = " ".join((place or "").split()) or (meeting_place(host) if host is not None else "")
    if not where:
        raise MeetingError("Indiquez un lieu (--place) ou une entreprise hôte (--host SIRET).")
    meeting = Meeting(
        uid=meeting_uid(domain),
        title=title[:300],
        format=meeting_format,
        starts_at=starts_at,
        ends_at=ends_at,
        place=where[:500],
        host_company_id=host.id if host is not None else None,
        campaign_id=campaign_id,
        capacity=capacity,
        per_company=per_company,
        agenda=(agenda or DEFAULT_AGENDA)[:4000],
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    return meeting


def find_meeting(*, session: Session, meeting_id: int) -> Meeting:
    """Return the meeting with this number, or raise MeetingNotFound."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise MeetingNotFound(
            f"Aucune rencontre n° {meeting_id} : « synergie meetings list » les montre toutes."
        )
    return meeting


def invited_companies(*, session: Session, meeting: Meeting) -> list[Company]:
    """Return the companies to invite: the campaign's at ``visited`` or later, the referred ones, staff's guests.

    Companies staff took off the list, and those that declined, closed, opted out or are
    unreachable, are left out.
    """
    query = select(Company).where(col(Company.stage).in_(INVITED_STAGES))
    if meeting.campaign_id is not None:
        query = query.where(Company.campaign_id == meeting.campaign_id)
    chosen = {company.id: company for company in session.exec(query)}
    referred = select(Company).join(Referral, col(Referral.company_id) == col(Company.id))
    for company in session.exec(referred.where(Referral.meeting_id == meeting.id)):
        chosen[company.id] = company
    registrations = session.exec(
        select(Registration, Company)
        .join(Company, col(Company.id) == col(Registration.company_id))
        .where(Registration.meeting_id == meeting.id)
    ).all()
    for registration, company in registrations:
        if registration.removed:
            chosen.pop(company.id, None)
        else:
            chosen[company.id] = company  # a guest staff added, or one invited earlier
    stopped = {Stage.DECLINED, Stage.UNREACHABLE, Stage.OPTED_OUT, Stage.CLOSED}
    return sorted(
        (company for company in chosen.values() if company.stage not in stopped),
        key=lambda company: company.id or 0,
    )


def open_registrations(
    *, session: Session, meeting: Meeting, companies: list[Company], now: datetime
) -> list[Registration]:
    """Return each company's registration for the meeting, creating the missing ones (no answer)."""

    def registrations() -> dict[int, Registration]:
        return {
            registration.company_id: registration
            for registration in session.exec(
                select(Registration).where(Registration.meeting_id == meeting.id)
            )
        }

    existing = registrations()
    missing = [c.id for c in companies if c.id is not None and c.id not in existing]
    if missing:
        # One statement for the lot: an ORM object each costs more than the invitation it leads to.
        session.execute(
            sa.insert(Registration),
            [
                {"meeting_id": meeting.id, "company_id": company_id, "status": Answer.NO_ANSWER,
                 "people": 0, "version": 0, "confirmed_version": 0, "removed": False, "rounds": 0,
                 "created_at": now, "updated_at": now}
                for company_id in missing
            ],
        )  # fmt: skip
        existing = registrations()
    return [existing[c.id] for c in companies if c.id is not None]


def add_guest(
    *, session: Session, meeting: Meeting, company: Company, now: datetime
) -> Registration:
    """Put a company on the meeting's list by hand (or back on it); the next invite run writes to it.

    Put back after staff took it off, it starts a new round: its answer and seats were given
    up with the removal, so it must answer again, and it gets the invitation again (its own
    copy of the calendar entry was cancelled: the new REQUEST has a higher SEQUENCE).
    """
    [registration] = open_registrations(
        session=session, meeting=meeting, companies=[company], now=now
    )
    if registration.removed:
        registration.rounds += 1
        registration.status = Answer.NO_ANSWER
        registration.people = 0
        registration.waiting_since = None
        registration.promoted_at = None
        # A new version, nothing to confirm: a page opened before the removal is stale.
        registration.version += 1
        registration.confirmed_version = registration.version
    registration.removed = False
    registration.updated_at = now
    session.add(registration)
    session.flush()
    return registration


def remove_guest(
    *, session: Session, meeting: Meeting, company: Company, now: datetime
) -> Registration:
    """Take a company off the meeting's list; it is invited no more, its seats go to those waiting.

    A new version of its registration: the next invite or sync run sends it the METHOD:CANCEL of
    its own copy of the calendar entry (``queue_removals``). Removing it again changes nothing.
    """
    lock_meeting(session, meeting.id)  # type: ignore[arg-type]
    [registration] = open_registrations(
        session=session, meeting=meeting, companies=[company], now=now
    )
    if registration.removed:
        return registration
    registration.removed = True
    registration.updated_at = now
    registration.version += 1
    session.add(registration)
    session.flush()
    promote_waiting(session=session, meeting=meeting, now=now)
    return registration


@dataclass(frozen=True, slots=True)
class MeetingSummary:
    """Who answered what, for ``meetings show`` and the report."""

    meeting: Meeting
    host: str | None
    rows: list[tuple[Registration, Company]]
    referrals: list[tuple[Referral, Company, Company]]  # referral, referred, referrer
    invitations_sent: frozenset[int] = frozenset()  # contacts whose invitation left

    def referral_state(self, referral: Referral) -> str:
        """Return, in French, where the referred company's invitation stands."""
        if referral.contact_id in self.invitations_sent:
            return "invitation envoyée"
        if referral.invited_at is not None:
            return "pas d'envoi (refuse les messages ou a quitté la démarche)"
        return "invitation en attente"

    def of(self, answer: Answer) -> list[tuple[Registration, Company]]:
        return [(r, c) for r, c in self.rows if r.status == answer and not r.removed]

    @property
    def people(self) -> int:
        return sum(r.people for r, _ in self.of(Answer.REGISTERED))


def summarise(*, session: Session, meeting: Meeting) -> MeetingSummary:
    """Return the meeting's registrations by answer (waiting ones in line order) and its referrals."""
    rows = list(
        session.exec(
            select(Registration, Company)
            .join(Company, col(Company.id) == col(Registration.company_id))
            .where(Registration.meeting_id == meeting.id)
            .order_by(col(Registration.waiting_since), col(Company.name))
        ).all()
    )
    referrals = []
    for referral, company in session.exec(
        select(Referral, Company)
        .join(Company, col(Company.id) == col(Referral.company_id))
        .where(Referral.meeting_id == meeting.id)
        .order_by(col(Referral.id))
    ).all():
        by = session.get(Company, referral.referrer_company_id)
        if by is not None:
            referrals.append((referral, company, by))
    host = session.get(Company, meeting.host_company_id) if meeting.host_company_id else None
    sent = session.exec(
        select(Message.contact_id).where(
            col(Message.step).startswith(f"reunion-{meeting.id}-invitation-"),
            Message.status == MessageStatus.SENT,
            col(Message.contact_id).in_([r.contact_id for r, _, _ in referrals]),
        )
    ).all()
    return MeetingSummary(
        meeting, host.name if host else None, rows, referrals,
        frozenset(c for c in sent if c is not None),
    )  # fmt: skip
