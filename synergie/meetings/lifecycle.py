"""A meeting's life: invite, move (same UID, SEQUENCE + 1), cancel (METHOD:CANCEL)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from models.enums import Answer, MeetingStatus
from models.tables import Meeting
from synergie.meetings.messages import (
    email_recipients,
    queue_cancellations,
    queue_invitations,
    queue_removals,
)
from synergie.meetings.planning import MeetingError, invited_companies, open_registrations
from synergie.meetings.registrations import lock_meeting
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings

__all__ = ["InviteOutcome", "cancel_meeting", "invite_meeting", "reschedule_meeting"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InviteOutcome:
    """What an invite run did: companies on the list, contacts written to, new invitations, new removals.

    ``removals`` counts the own-copy cancellations queued for companies staff took off the list.
    """

    companies: int
    contacts: int
    queued: int
    removals: int = 0


def _require_open(meeting: Meeting, now: datetime) -> None:
    if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.HELD):
        state = "annulée" if meeting.status == MeetingStatus.CANCELLED else "déjà tenue"
        raise MeetingError(f"La rencontre n° {meeting.id} est {state} : rien à envoyer.")
    if meeting.starts_at <= now:
        raise MeetingError(f"La rencontre n° {meeting.id} a déjà commencé.")


def invite_meeting(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> InviteOutcome:
    """Open a registration per invited company and queue each contact's invitation; a rerun adds only newcomers.

    Companies staff took off the list get the METHOD:CANCEL of their own copy (``queue_removals``).
    """
    lock_meeting(session, meeting.id)  # type: ignore[arg-type]
    session.refresh(meeting)
    _require_open(meeting, now)
    companies = invited_companies(session=session, meeting=meeting)
    open_registrations(session=session, meeting=meeting, companies=companies, now=now)
    recipients = email_recipients(session=session, meeting=meeting)
    queued = queue_invitations(
        session=session, meeting=meeting, recipients=recipients, settings=settings,
        templates=templates, now=now,
    )  # fmt: skip
    if meeting.status == MeetingStatus.PLANNED:
        meeting.status = MeetingStatus.INVITED
        meeting.updated_at = now
        session.add(meeting)
        session.flush()
    removals = queue_removals(
        session=session, meeting=meeting, settings=settings, templates=templates, now=now
    )
    logger.info("meeting %s: %d companies, %d contacts, %d new invitations, %d removals",
                meeting.id, len(companies), len(recipients), queued, removals)  # fmt: skip
    return InviteOutcome(len(companies), len(recipients), queued, removals)


def reschedule_meeting(
    *, session: Session, meeting: Meeting, starts_at: datetime, ends_at: datetime | None,
    settings: Settings, templates: MailTemplates, now: datetime,
) -> int:  # fmt: skip
    """Move the meeting: same UID, SEQUENCE + 1, a new REQUEST to every company registered or waiting."""
    lock_meeting(session, meeting.id)  # type: ignore[arg-type]
    session.refresh(meeting)
    _require_open(meeting, now)
    if starts_at.tzinfo is None or starts_at <= now:
        raise MeetingError("La nouvelle date doit être dans le futur.")
    length = meeting.ends_at - meeting.starts_at
    ends_at = ends_at or starts_at + length
    if ends_at <= starts_at:
        raise MeetingError("La fin de la rencontre (--until) doit suivre son début.")
    meeting.starts_at, meeting.ends_at = starts_at, ends_at
    meeting.sequence += 1
    meeting.updated_at = now
    session.add(meeting)
    session.flush()
    if meeting.status == MeetingStatus.PLANNED:
        return 0  # nobody was invited yet: the first invitation will carry the new date
    recipients = email_recipients(
        session=session, meeting=meeting, statuses=[Answer.REGISTERED, Answer.WAITING]
    )
    return queue_invitations(
        session=session, meeting=meeting, recipients=recipients, settings=settings,
        templates=templates, now=now,
    )  # fmt: skip


def cancel_meeting(
    *,
    session: Session,
    meeting: Meeting,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
) -> int:
    """Cancel the meeting: status cancelled, SEQUENCE + 1, a METHOD:CANCEL to everyone invited who did not decline."""
    lock_meeting(session, meeting.id)  # type: ignore[arg-type]
    session.refresh(meeting)
    _require_open(meeting, now)
    was_invited = meeting.status == MeetingStatus.INVITED
    meeting.status = MeetingStatus.CANCELLED
    meeting.sequence += 1
    meeting.updated_at = now
    session.add(meeting)
    session.flush()
    if not was_invited:
        return 0
    return queue_cancellations(
        session=session, meeting=meeting, settings=settings, templates=templates, now=now
    )
