"""After a held meeting: open its survey, invite each attending contact once, remind once, close after N days.

Outbox keys (step + contact + channel, see ``synergie.messaging.outbox``):

- ``questionnaire-<survey id>-invitation``: the invitation, once per contact;
- ``questionnaire-<survey id>-rappel``: the one reminder, to a contact who has not answered
  ``SYNERGIE_SURVEY_REMINDER_DAYS`` after the invitation.

A rerun, or a second run at the same time (both hold the meeting's lock in turn), finds the
keys and the ``survey_recipient`` rows taken and sends nothing more. Nobody who answered,
opted out or was suppressed is written to; the send's claim checks opt-outs once more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.enums import Channel, MeetingStatus
from models.surveys import Survey, SurveyRecipient, SurveyResponse
from models.tables import Company, Contact, Meeting, Registration
from synergie.mailing.campaigns import sender_domain
from synergie.meetings.messages import email_recipients, meeting_context
from synergie.meetings.planning import MeetingError, find_meeting, french_date
from synergie.meetings.registrations import lock_meeting
from synergie.messaging.links import (
    InvalidToken,
    TokenClaims,
    _portal_base,
    read_token,
    sign_token,
    unsubscribe_url,
)
from synergie.messaging.optouts import opted_out_contact_ids
from synergie.messaging.outbox import enqueue, message_key, new_message_id
from synergie.messaging.rendering import MailTemplates, programme_context
from synergie.messaging.sending import prepared_email
from synergie.settings import Settings
from synergie.surveys.definition import SurveyDefinition, load_survey

__all__ = [
    "INVITATION_TEMPLATE",
    "MEETING_SURVEY",
    "REMINDER_TEMPLATE",
    "SURVEY",
    "SurveyError",
    "SurveyLink",
    "SurveyRun",
    "attending_company_ids",
    "is_open",
    "meetings_to_survey",
    "open_survey",
    "read_survey_token",
    "run_meeting_survey",
    "survey_for_meeting",
    "survey_url",
]

logger = logging.getLogger(__name__)

SURVEY = "survey"  # the token purpose of survey links
MEETING_SURVEY = "suivi-rencontre"  # the survey file every meeting's follow-up uses
INVITATION_TEMPLATE = "questionnaire-suivi"
REMINDER_TEMPLATE = "rappel-questionnaire-suivi"


class SurveyError(Exception):
    """A survey operation a person asked for cannot be done; the message says why, in French."""


@dataclass(frozen=True, slots=True)
class SurveyLink:
    """What a survey link names: a contact, a survey and its meeting."""

    contact_public_id: str
    survey_id: int
    meeting_id: int


def survey_url(settings: Settings, contact_public_id: str, survey: Survey) -> str:
    """Return ``{public_url}/suivi/{token}``: the survey page of one contact, bound to the survey and its meeting."""
    # No expiry in the token: after the closing date the page says the survey is closed.
    token = sign_token(
        key=settings.link_signing_key, purpose=SURVEY, subject=contact_public_id,
        channel=f"survey-{survey.id}-meeting-{survey.meeting_id}",
    )  # fmt: skip
    return f"{_portal_base(settings)}/suivi/{token}"


def read_survey_token(token: str, *, settings: Settings, now: datetime) -> SurveyLink:
    """Return what a genuine survey link names, or raise InvalidToken (French message)."""
    key, *previous = settings.link_verification_keys
    claims: TokenClaims = read_token(
        token, key=key, purpose=SURVEY, now=now, previous_keys=previous
    )
    parts = (claims.channel or "").split("-")
    if len(parts) != 4 or parts[0] != "survey" or parts[2] != "meeting":
        raise InvalidToken()
    try:
        return SurveyLink(claims.subject, int(parts[1]), int(parts[3]))
    except ValueError as exc:
        raise InvalidToken() from exc


def is_open(survey: Survey, now: datetime) -> bool:
    """Whether answers are still taken: not closed, and before its closing date."""
    return survey.closed_at is None and now < survey.closes_at


def survey_for_meeting(session: Session, meeting_id: int) -> Survey | None:
    return session.exec(select(Survey).where(Survey.meeting_id == meeting_id)).first()


def attending_company_ids(session: Session, meeting_id: int) -> list[int]:
    """The companies that came to the meeting (attendance recorded)."""
    return list(
        session.exec(
            select(Registration.company_id).where(
                Registration.meeting_id == meeting_id, col(Registration.attended).is_(True)
            ).order_by(col(Registration.company_id))
        ).all()
    )  # fmt: skip


def meetings_to_survey(*, session: Session, now: datetime, close_days: int) -> list[int]:
    """Held meetings whose survey is still to open (held within ``close_days``) or still open."""
    recent = now - timedelta(days=close_days)
    without = select(Meeting.id).where(
        Meeting.status == MeetingStatus.HELD,
        col(Meeting.ends_at) >= recent,
        ~sa.exists().where(col(Survey.meeting_id) == col(Meeting.id)),
    )
    still_open = select(Survey.meeting_id).where(col(Survey.closed_at).is_(None))
    ids = {int(i) for i in session.exec(without).all() if i is not None}
    ids |= {int(i) for i in session.exec(still_open).all()}
    return sorted(ids)


def open_survey(
    *, session: Session, meeting: Meeting, definition: SurveyDefinition, now: datetime,
    close_days: int,
) -> Survey:  # fmt: skip
    """Return the meeting's survey, opening it now (with ``definition`` kept as it is) if it has none."""
    survey = survey_for_meeting(session, meeting.id)  # type: ignore[arg-type]
    if survey is not None:
        return survey
    survey = Survey(
        meeting_id=meeting.id, name=definition.name, title=definition.title,  # type: ignore[arg-type]
        definition=definition.stored(), opened_at=now, closes_at=now + timedelta(days=close_days),
    )  # fmt: skip
    session.add(survey)
    session.flush()
    logger.info("survey %s opened for meeting %s", survey.id, meeting.id)
    return survey


@dataclass(frozen=True, slots=True)
class SurveyRun:
    """What one pass over a meeting's survey did."""

    meeting_id: int
    survey_id: int | None
    opened: bool = False
    invitations: int = 0
    reminders: int = 0
    closed: bool = False


def _context(
    *, settings: Settings, meeting: Meeting, survey: Survey, company: Company, contact: Contact
) -> dict[str, Any]:
    closes_on, _ = french_date(survey.closes_at - timedelta(seconds=1), settings.tz)
    return {
        "company": company, "contact": contact,
        "programme": programme_context(settings), "meeting": meeting_context(meeting, settings),
        "survey": {"title": survey.title, "closes_on": closes_on,
                   "questions": len(survey.definition.get("questions", []))},
        "survey_url": survey_url(settings, contact.public_id, survey),
        "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL),
    }  # fmt: skip


def _rows(
    *, settings: Settings, templates: MailTemplates, meeting: Meeting, survey: Survey,
    people: Sequence[tuple[Company, Contact]], template: str, kind: str,
) -> list[dict[str, Any]]:  # fmt: skip
    step = f"questionnaire-{survey.id}-{kind}"
    domain = sender_domain(settings)
    rows = []
    for company, contact in people:
        rendered = templates.render(
            template,
            _context(
                settings=settings, meeting=meeting, survey=survey, company=company, contact=contact
            ),
        )
        rows.append({
            "key": message_key(campaign_id=None, step=step, recipient=f"contact:{contact.id}",
                               channel=Channel.EMAIL),
            "campaign_id": None, "step": step, "channel": Channel.EMAIL.value,
            "contact_id": contact.id, "company_id": company.id,
            "to_address": contact.email or "", "message_id": new_message_id(domain),
            "context": prepared_email(subject=rendered.subject, text=rendered.text,
                                      html=rendered.html, to_name=contact.name or ""),
        })  # fmt: skip
    return rows


def _answered(session: Session, survey: Survey) -> set[int]:
    return set(
        session.exec(select(SurveyResponse.contact_id).where(SurveyResponse.survey_id == survey.id))
    )


def queue_invitations(
    *, session: Session, settings: Settings, templates: MailTemplates, meeting: Meeting,
    survey: Survey, now: datetime,
) -> int:  # fmt: skip
    """Invite each reachable contact of the attending companies not invited yet; return how many are new."""
    attending = attending_company_ids(session, meeting.id)  # type: ignore[arg-type]
    if not attending:
        return 0
    invited = set(
        session.exec(
            select(SurveyRecipient.contact_id).where(SurveyRecipient.survey_id == survey.id)
        )
    )
    answered = _answered(session, survey)
    recipients = [
        r for r in email_recipients(session=session, meeting=meeting, company_ids=attending)
        if r.contact.id not in invited and r.contact.id not in answered
    ]  # fmt: skip
    if not recipients:
        return 0
    rows = _rows(settings=settings, templates=templates, meeting=meeting, survey=survey,
                 people=[(r.company, r.contact) for r in recipients], template=INVITATION_TEMPLATE,
                 kind="invitation")  # fmt: skip
    added = enqueue(session.connection(), rows, now=now)
    session.add_all(
        SurveyRecipient(survey_id=survey.id, contact_id=r.contact.id, company_id=r.company.id,  # type: ignore[arg-type]
                        invited_at=now)
        for r in recipients
    )  # fmt: skip
    session.flush()
    return added


def queue_reminders(
    *, session: Session, settings: Settings, templates: MailTemplates, meeting: Meeting,
    survey: Survey, now: datetime,
) -> int:  # fmt: skip
    """Queue the one reminder of each contact invited ``survey_reminder_days`` ago who has not answered."""
    due = session.exec(
        select(SurveyRecipient, Contact, Company)
        .join(Contact, col(Contact.id) == col(SurveyRecipient.contact_id))
        .join(Company, col(Company.id) == col(SurveyRecipient.company_id))
        .where(
            SurveyRecipient.survey_id == survey.id,
            col(SurveyRecipient.reminded_at).is_(None),
            col(SurveyRecipient.invited_at) <= now - timedelta(days=settings.survey_reminder_days),
            col(Contact.email).is_not(None),
            col(Contact.email_invalid_at).is_(None),
        )
        .order_by(col(SurveyRecipient.id))
    ).all()
    answered = _answered(session, survey)
    due = [(r, contact, company) for r, contact, company in due if contact.id not in answered]
    refused = opted_out_contact_ids(
        session=session, contact_ids=[c.id for _, c, _ in due if c.id is not None],
        channel=Channel.EMAIL,
    )  # fmt: skip
    due = [(r, contact, company) for r, contact, company in due if contact.id not in refused]
    if not due:
        return 0
    rows = _rows(settings=settings, templates=templates, meeting=meeting, survey=survey,
                 people=[(company, contact) for _, contact, company in due],
                 template=REMINDER_TEMPLATE, kind="rappel")  # fmt: skip
    added = enqueue(session.connection(), rows, now=now)
    session.execute(
        sa.update(SurveyRecipient)
        .where(col(SurveyRecipient.id).in_([r.id for r, _, _ in due]))
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    return added


def run_meeting_survey(
    *, session: Session, settings: Settings, templates: MailTemplates, meeting_id: int,
    now: datetime, definition: SurveyDefinition | None = None,
) -> SurveyRun:  # fmt: skip
    """Open the held meeting's survey if needed, queue invitations and due reminders, close it when due.

    Runs under the meeting's lock (call it in a write transaction): two runs go one at a time.
    """
    lock_meeting(session, meeting_id)
    meeting = find_meeting(session=session, meeting_id=meeting_id)
    session.refresh(meeting)
    survey = survey_for_meeting(session, meeting_id)
    opened = False
    if survey is None:
        if meeting.status != MeetingStatus.HELD:
            raise SurveyError(
                f"La rencontre n° {meeting_id} n'est pas encore tenue : notez d'abord la présence "
                f"(synergie meetings attendance {meeting_id} --present SIRET …)."
            )
        definition = definition or load_survey(MEETING_SURVEY, settings.templates_dir)
        survey = open_survey(session=session, meeting=meeting, definition=definition, now=now,
                             close_days=settings.survey_close_days)  # fmt: skip
        opened = True
    if survey.closed_at is not None:
        return SurveyRun(meeting_id, survey.id)
    if not is_open(survey, now):
        survey.closed_at = now
        session.add(survey)
        session.flush()
        logger.info("survey %s of meeting %s closed", survey.id, meeting_id)
        return SurveyRun(meeting_id, survey.id, closed=True)
    invitations = queue_invitations(session=session, settings=settings, templates=templates,
                                    meeting=meeting, survey=survey, now=now)  # fmt: skip
    reminders = queue_reminders(session=session, settings=settings, templates=templates,
                                meeting=meeting, survey=survey, now=now)  # fmt: skip
    return SurveyRun(meeting_id, survey.id, opened, invitations, reminders)


def check_meeting(session: Session, meeting_id: int) -> Meeting:
    """The meeting, or SurveyError in French (for the CLI)."""
    try:
        return find_meeting(session=session, meeting_id=meeting_id)
    except MeetingError as exc:
        raise SurveyError(str(exc)) from exc
