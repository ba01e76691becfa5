"""Tasks of the mailbox flow: one pass over the watched IMAP folder, and its summary artifact."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.db import require_schema
from portal.events import (
    INVITATION_ANSWERED_EVENT,
    MeetingEvent,
    OptOutEvent,
    emit_meeting_event,
    emit_opt_out,
)
from synergie.mailbox.applying import OPT_OUT_SOURCE
from synergie.mailbox.checking import MailboxReport, check_mailbox
from synergie.mailbox.imap import ImapMailbox
from synergie.settings import Settings
from tasks.mailing import templates_for
from tasks.runtime import current_actor, engine_for, imap_password


def _now() -> datetime:
    return datetime.now(UTC)


# No retries: a rerun is safe (each mail is journalled), and the schedule comes back in 15 minutes.
@task(name="check-mailbox", cache_policy=NO_CACHE)
def read_mailbox(*, settings: Settings, limit: int, dry_run: bool) -> MailboxReport:
    """Read the watched folder once: act on each mail, move it to the folder saying what became of it."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with ImapMailbox(settings, password=imap_password(settings) or "") as mailbox:
        report = check_mailbox(
            engine=engine, settings=settings, templates=templates_for(settings), mailbox=mailbox,
            now=_now, actor=current_actor(), limit=limit, dry_run=dry_run,
        )  # fmt: skip
    for item in report.opt_outs:
        # The portal's event, so that whatever listens to opt-outs hears these too.
        emit_opt_out(
            OptOutEvent(
                contact_public_id=item.contact_public_id, company_id=item.company_id,
                channels=(item.channel,), source=OPT_OUT_SOURCE, occurred=_now(),
            )
        )  # fmt: skip
    for answered in report.meeting_answers:
        # The portal's event: the meeting-sync deployment confirms the answer and promotes.
        emit_meeting_event(
            MeetingEvent(
                name=INVITATION_ANSWERED_EVENT, meeting_id=answered.meeting_id,
                company_id=answered.company_id, contact_public_id=answered.contact_public_id,
                occurred=_now(), answer=answered.answer,
            )
        )  # fmt: skip
    get_run_logger().info(
        "mailbox: %d mail(s) handled, %d already handled, %d left (dry run: %s) %s",
        report.handled, report.already_handled, report.left, dry_run, report.as_dict(),
    )  # fmt: skip
    return report


@task(name="publish-mailbox-summary", cache_policy=NO_CACHE)
def publish_mailbox_summary(report: MailboxReport) -> None:
    """A table artifact: how many mails of each kind, and where they went."""
    prefix = "Essai à blanc : " if report.dry_run else ""
    create_table_artifact(
        key="mailbox-summary",
        table=report.table(),
        description=f"{prefix}{report.handled} courriel(s) traité(s), "
        f"{report.already_handled} déjà traité(s), {report.left} restant(s)",
    )
    if report.lines:
        create_table_artifact(
            key="mailbox-mails",
            table=report.lines,
            description=f"{prefix}ce que chaque courriel est devenu",
        )
