"""Tasks of the meeting flows: thin wrappers over ``synergie.meetings``, one transaction each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlmodel import Session, col, select

from models.db import require_schema, write_transaction
from models.enums import Answer, Channel, MessageStatus
from models.tables import Company, Registration
from portal.events import MeetingHeldEvent, emit_meeting_held
from synergie.meetings.attendance import record_attendance
from synergie.meetings.lifecycle import invite_meeting
from synergie.meetings.messages import (
    catch_up,
    open_meeting_ids,
    queue_day_before_sms,
    queue_week_reminders,
)
from synergie.meetings.planning import MeetingError, find_meeting
from synergie.messaging.rendering import MailTemplates, SmsTemplates
from synergie.messaging.sending import SendPolicy, send_prepared
from synergie.settings import Settings
from tasks.runtime import backend_for, current_actor, engine_for


class _DryRun(Exception):
    """Raised inside the transaction of a dry run, so that everything it wrote is rolled back."""


@contextmanager
def writing(settings: Settings) -> Iterator[Session]:
    """A session on one write transaction (BEGIN IMMEDIATE on SQLite), committed on success."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with write_transaction(engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
            session.flush()
        finally:
            session.close()


@task(name="invite-to-meeting", cache_policy=NO_CACHE)
def invite_to_meeting(*, settings: Settings, meeting_id: int, dry_run: bool) -> dict[str, int]:
    """Open the registrations and queue each invited contact's invitation; roll back on a dry run."""
    result: dict[str, int] = {}
    try:
        with writing(settings) as session:
            meeting = find_meeting(session=session, meeting_id=meeting_id)
            outcome = invite_meeting(
                session=session, meeting=meeting, settings=settings,
                templates=MailTemplates(settings.templates_dir), now=datetime.now(UTC),
            )  # fmt: skip
            result = {
                "companies": outcome.companies,
                "contacts": outcome.contacts,
                "queued": outcome.queued,
                "removals": outcome.removals,
            }
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    get_run_logger().info("meeting %s: %s (dry run: %s)", meeting_id, result, dry_run)
    return result


@task(name="catch-up-meetings", cache_policy=NO_CACHE)
def catch_up_meetings(*, settings: Settings, meeting_id: int | None) -> dict[str, int]:
    """Promotions, confirmations, own-copy cancellations and referred invitations not done yet, one meeting per transaction."""
    now = datetime.now(UTC)
    templates = MailTemplates(settings.templates_dir)
    if meeting_id is None:
        with Session(engine_for(settings.db_url)) as session:
            meeting_ids = open_meeting_ids(session=session, now=now)
    else:
        meeting_ids = [meeting_id]
    totals = {
        "meetings": len(meeting_ids),
        "promoted": 0,
        "confirmations": 0,
        "referral_invitations": 0,
        "removals": 0,
    }
    for number in meeting_ids:
        with writing(settings) as session:
            counts = catch_up(
                session=session, settings=settings, templates=templates, now=now, meeting_id=number
            )
        for name, value in counts.items():
            totals[name] += value
    get_run_logger().info("meetings caught up: %s", totals)
    return totals


@task(name="queue-meeting-reminders", cache_policy=NO_CACHE)
def queue_meeting_reminders(*, settings: Settings, meeting_id: int | None = None) -> dict[str, int]:
    """Queue the week-before e-mails and the day-before SMS that are due; return how many are new."""
    now = datetime.now(UTC)
    with writing(settings) as session:
        emails = queue_week_reminders(
            session=session,
            settings=settings,
            templates=MailTemplates(settings.templates_dir),
            now=now,
            meeting_id=meeting_id,
        )
        sms = queue_day_before_sms(
            session=session,
            settings=settings,
            templates=SmsTemplates(settings.templates_dir),
            now=now,
            meeting_id=meeting_id,
        )
    get_run_logger().info("meeting reminders queued: %d e-mail(s), %d SMS", emails, sms)
    return {"email_reminders": emails, "sms_reminders": sms}


@task(name="send-meeting-batch", cache_policy=NO_CACHE)
def send_batch(*, settings: Settings, channel: Channel, limit: int) -> dict[str, int]:
    """Send one batch of prepared messages on ``channel`` over one connection; return claimed and statuses."""
    outcome = send_prepared(
        engine=engine_for(settings.db_url), backend=backend_for(settings, channel), channel=channel,
        limit=limit, policy=SendPolicy.from_settings(settings, actor=current_actor()),
        now=lambda: datetime.now(UTC),
    )  # fmt: skip
    return {"claimed": outcome.claimed, **{s.value: outcome.statuses[s] for s in MessageStatus}}


@task(name="meeting-attendees", cache_policy=NO_CACHE)
def registered_companies(*, settings: Settings, meeting_id: int) -> list[dict[str, str | int]]:
    """Return the companies registered (or waiting) for the meeting: id, name, SIRET."""
    with Session(engine_for(settings.db_url)) as session:
        meeting = find_meeting(session=session, meeting_id=meeting_id)
        rows = session.exec(
            select(Company)
            .join(Registration, col(Registration.company_id) == col(Company.id))
            .where(
                Registration.meeting_id == meeting.id,
                col(Registration.status).in_([Answer.REGISTERED, Answer.WAITING]),
                col(Registration.removed).is_(False),
            )
            .order_by(col(Company.name))
        ).all()
        return [{"id": c.id or 0, "name": c.name, "siret": c.siret or ""} for c in rows]


@task(name="record-meeting-attendance", cache_policy=NO_CACHE)
def record_meeting_attendance(
    *,
    settings: Settings,
    meeting_id: int,
    sirets: list[str],
    company_ids: list[int],
    actor: str | None = None,
) -> dict[str, object]:
    """Record who came (by SIRET or company id): meeting held, attendees participants, hours in the ledger."""
    with writing(settings) as session:
        meeting = find_meeting(session=session, meeting_id=meeting_id)
        ids = set(company_ids)
        for siret in sirets:
            company = session.exec(
                select(Company).where(Company.siret == siret.replace(" ", ""))
            ).first()
            if company is None:
                raise MeetingError(f"Aucune entreprise avec le SIRET {siret}.")
            ids.add(company.id)  # type: ignore[arg-type]
        outcome = record_attendance(
            session=session, meeting=meeting, present_company_ids=ids, now=datetime.now(UTC),
            actor=actor or current_actor(), hours=settings.meeting_hours, timezone=settings.timezone,
        )  # fmt: skip
    # After the commit: the surveys deployment starts on this event (its daily run catches up a lost one).
    emit_meeting_held(
        MeetingHeldEvent(
            meeting_id=meeting_id, present=len(outcome.present), occurred=datetime.now(UTC)
        )
    )
    create_table_artifact(
        key="meeting-attendance",
        table=[{"entreprise": name, "présente": "oui"} for name in outcome.present]
        + [{"entreprise": name, "présente": "non"} for name in outcome.absent],
        description=f"Rencontre n° {meeting_id} : {len(outcome.present)} entreprise(s) présente(s)",
    )
    return {"present": len(outcome.present), "absent": len(outcome.absent),
            "participants": len(outcome.now_participants), "hours": outcome.hours}  # fmt: skip


def send_waiting(*, settings: Settings, channel: Channel, batch_size: int = 500) -> dict[str, int]:
    """Send every prepared message waiting on ``channel``, one task (one connection) per batch."""
    totals: dict[str, int] = {}
    while True:
        outcome = send_batch(settings=settings, channel=channel, limit=batch_size)
        for name, value in outcome.items():
            totals[name] = totals.get(name, 0) + value
        if outcome["claimed"] < batch_size:
            return totals
