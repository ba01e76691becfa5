"""After a meeting: who came, the meeting held, attendees participants, staff hours in the ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from models.companies import move_company
from models.enums import Activity, Answer, MeetingStatus, Stage
from models.stages import allowed_targets
from models.tables import Company, Meeting, Registration, TimeEntry
from synergie.meetings.planning import MeetingError
from synergie.meetings.registrations import lock_meeting

__all__ = ["AttendanceOutcome", "record_attendance"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttendanceOutcome:
    """What recording attendance did."""

    present: list[str]
    absent: list[str]
    now_participants: list[str]
    hours: float


def record_attendance(
    *, session: Session, meeting: Meeting, present_company_ids: Iterable[int], now: datetime,
    actor: str, hours: float, timezone: str,
) -> AttendanceOutcome:  # fmt: skip
    """Mark who came; the meeting becomes held, attendees move to ``participant``, ``hours`` go to the ledger."""
    from zoneinfo import ZoneInfo

    lock_meeting(session, meeting.id)  # type: ignore[arg-type]
    session.refresh(meeting)
    if meeting.status == MeetingStatus.HELD:
        raise MeetingError(f"La présence à la rencontre n° {meeting.id} est déjà notée.")
    if meeting.status == MeetingStatus.CANCELLED:
        raise MeetingError(f"La rencontre n° {meeting.id} a été annulée.")
    if now < meeting.starts_at:
        raise MeetingError("La rencontre n'a pas encore commencé : notez la présence après.")
    present = set(present_company_ids)
    rows = session.exec(
        select(Registration, Company)
        .join(Company, Company.id == Registration.company_id)  # type: ignore[arg-type]
        .where(Registration.meeting_id == meeting.id)
    ).all()
    known = {company.id for _, company in rows}
    unknown = present - known
    if unknown:
        raise MeetingError(
            "Ces entreprises n'étaient pas invitées à cette rencontre : "
            + ", ".join(str(i) for i in sorted(unknown))
        )
    came: list[str] = []
    missed: list[str] = []
    moved: list[str] = []
    for registration, company in rows:
        attended = company.id in present
        if not attended and registration.status not in (Answer.REGISTERED, Answer.WAITING):
            continue  # not expected: nothing to say about them
        registration.attended = attended
        registration.updated_at = now
        session.add(registration)
        (came if attended else missed).append(company.name)
        if attended and Stage.PARTICIPANT in allowed_targets(Stage(company.stage)):
            move_company(
                session=session, company=company, target=Stage.PARTICIPANT,
                why=f"présente à la rencontre « {meeting.title} »", actor=actor, now=now,
            )  # fmt: skip
            moved.append(company.name)
    meeting.status = MeetingStatus.HELD
    meeting.updated_at = now
    session.add(meeting)
    session.add(
        TimeEntry(
            activity=Activity.MEETING,
            hours=hours,
            company_id=meeting.host_company_id,
            day=meeting.starts_at.astimezone(ZoneInfo(timezone)).date(),
            actor=actor,
            created_at=now,
        )  # fmt: skip
    )
    session.flush()
    return AttendanceOutcome(sorted(came), sorted(missed), sorted(moved), hours)
