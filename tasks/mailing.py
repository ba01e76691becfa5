"""Tasks of a mailing: prepare and check, select and enqueue, send one batch, publish the summary.

The mailing flow is async (an async flow does not wait on Prefect's heartbeat thread at
the end, a synchronous one loses up to a second there), so its tasks are async too. Each
task talks to Prefect (secrets, artifacts) with Prefect's async calls, and runs its
blocking part (database, SMTP), which knows nothing of Prefect, in a worker thread: inside
an async task Prefect's synchronous calls return coroutines, even from another thread.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.db import require_schema, session_scope
from models.enums import Channel, MessageStatus
from synergie.mailing.campaigns import (
    MailComposer,
    OutsideCommunes,
    batch_size_for,
    companies_outside,
    enqueue_recipients,
    find_campaign,
    preview,
    select_recipients,
    send_batch,
    sender_domain,
)
from synergie.messaging.optout_journal import apply_pending_opt_outs, journal_for
from synergie.messaging.outbox import next_retry_at, step_counts
from synergie.messaging.rendering import MailTemplates
from synergie.messaging.sending import BatchOutcome, RateLimiter, SendPolicy
from synergie.messaging.transports import (
    check_email_settings,
    check_email_transport,
    email_backend,
)
from synergie.settings import Settings
from tasks.runtime import asmtp_password, current_actor, engine_for


@functools.cache
def _templates(override_dir: Path | None) -> MailTemplates:
    return MailTemplates(override_dir)


def templates_for(settings: Settings) -> MailTemplates:
    """The templates, compiled once per process (so once per flow run), not once per batch."""
    return _templates(settings.templates_dir)


@dataclass(frozen=True)
class MailingPlan:
    """A mailing resolved and checked: which campaign and step, how fast, for real or not."""

    campaign_id: int
    campaign_name: str
    step: str
    batch_size: int
    concurrency: int
    max_per_run: int
    rate_per_minute: int | None
    dry_run: bool


@task(name="prepare-mailing", cache_policy=NO_CACHE)
async def prepare_mailing(
    *, settings: Settings, campaign: str | None, template: str, batch_size: int, concurrency: int,
    max_per_run: int, rate_per_minute: int | None, dry_run: bool,
) -> MailingPlan:  # fmt: skip
    """Resolve the campaign, render a test message, compose it and try the relay, before anything is claimed."""
    password = None if dry_run else await asmtp_password(settings)
    return await asyncio.to_thread(
        _prepare, settings=settings, password=password, campaign=campaign, template=template,
        batch_size=batch_size, concurrency=concurrency, max_per_run=max_per_run,
        rate_per_minute=rate_per_minute, dry_run=dry_run,
    )  # fmt: skip


def _prepare(
    *, settings: Settings, password: str | None, campaign: str | None, template: str, batch_size: int,
    concurrency: int, max_per_run: int, rate_per_minute: int | None, dry_run: bool,
) -> MailingPlan:  # fmt: skip
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with session_scope(engine) as session:
        found = find_campaign(session=session, name=campaign)
    if not dry_run:
        check_email_settings(settings, password=password)
    # A missing variable or template fails here, before anything is claimed.
    sample = MailComposer(
        settings=settings, templates=templates_for(settings), template=template
    ).preflight()
    if not dry_run:
        # So do a From or Reply-To that cannot be composed and a relay that refuses us: our
        # faults, which must never be recorded against the recipients.
        check_email_transport(settings, password=password, sample=sample)
    return MailingPlan(
        campaign_id=found.id,  # type: ignore[arg-type]
        campaign_name=found.name,
        step=template,
        batch_size=batch_size_for(batch_size, rate_per_minute),
        concurrency=concurrency,
        max_per_run=max_per_run,
        rate_per_minute=rate_per_minute,
        dry_run=dry_run,
    )


@task(name="enqueue-recipients", cache_policy=NO_CACHE)
async def enqueue_mailing(*, settings: Settings, plan: MailingPlan) -> tuple[int, int]:
    """Write an outbox row for every contact due this step; return (new rows, rows waiting to go)."""
    due, added, waiting = await asyncio.to_thread(_enqueue, settings, plan)
    get_run_logger().info(
        "%d contacts due step %r, %d new outbox rows, %d waiting", due, plan.step, added, waiting
    )
    return added, waiting


def _enqueue(settings: Settings, plan: MailingPlan) -> tuple[int, int, int]:
    engine = engine_for(settings.db_url)
    # An opt-out the portal could only journal (the database was busy) counts from now on.
    apply_pending_opt_outs(engine=engine, journal=journal_for(settings))
    with session_scope(engine) as session:
        campaign = find_campaign(session=session, name=plan.campaign_name)
    with engine.begin() as connection:
        recipients = select_recipients(connection, campaign=campaign, step=plan.step)
        added = enqueue_recipients(
            connection,
            recipients,
            campaign=campaign,
            step=plan.step,
            domain=sender_domain(settings),
            now=datetime.now(UTC),
        )
        counts = step_counts(
            connection, campaign_id=plan.campaign_id, step=plan.step, channel=Channel.EMAIL
        )
    return len(recipients), added, counts[MessageStatus.QUEUED] + counts[MessageStatus.SENDING]


@task(name="preview-mailing", cache_policy=NO_CACHE)
async def preview_mailing(
    *, settings: Settings, plan: MailingPlan
) -> tuple[list[dict[str, str]], OutsideCommunes]:
    """Render what would go out and publish it as a table; write and send nothing.

    Also returns how many companies of the listing the campaign's communes leave out, and why.
    """
    lines, due, outside = await asyncio.to_thread(_preview, settings, plan)
    left_out = ""
    if outside.no_code or outside.other_commune:
        left_out = (
            f" ; hors des communes de la campagne : {outside.no_code} entreprise(s) sans code "
            f"commune, {outside.other_commune} dans une autre commune"
        )
    await acreate_table_artifact(
        key="mailing-preview",
        table=lines
        or [{"entreprise": "aucun destinataire", "contact": "", "courriel": "", "objet": ""}],
        description=f"Essai à blanc « {plan.step} » : {len(lines)} message(s) partiraient (sur {due} dus){left_out}",
    )
    return lines, outside


def _preview(
    settings: Settings, plan: MailingPlan
) -> tuple[list[dict[str, str]], int, OutsideCommunes]:
    engine = engine_for(settings.db_url)
    with session_scope(engine) as session:
        campaign = find_campaign(session=session, name=plan.campaign_name)
    with engine.connect() as connection:
        recipients = select_recipients(connection, campaign=campaign, step=plan.step)
        outside = companies_outside(connection, campaign=campaign)
    composer = MailComposer(
        settings=settings, templates=templates_for(settings), template=plan.step
    )
    lines = preview(composer=composer, recipients=recipients[: plan.max_per_run])
    return lines, len(recipients), outside


@task(name="send-batch", cache_policy=NO_CACHE)
async def send_mail_batch(*, settings: Settings, plan: MailingPlan, limit: int) -> BatchOutcome:
    """Claim, send and record one batch over one connection."""
    password = await asmtp_password(settings)
    return await asyncio.to_thread(_send_batch, settings, plan, limit, password, current_actor())


def _send_batch(
    settings: Settings, plan: MailingPlan, limit: int, password: str | None, actor: str
) -> BatchOutcome:
    backend = email_backend(settings, password=password)
    policy = SendPolicy.from_settings(settings, actor=actor)
    composer = MailComposer(
        settings=settings, templates=templates_for(settings), template=plan.step
    )
    engine = engine_for(settings.db_url)
    # Before the claim, which cancels the rows of whoever opted out.
    apply_pending_opt_outs(engine=engine, journal=journal_for(settings))
    return send_batch(
        engine=engine, backend=backend, composer=composer,
        campaign_id=plan.campaign_id, step=plan.step, limit=limit, policy=policy,
        now=lambda: datetime.now(UTC),
        # Batches in flight share the run's rate.
        throttle=RateLimiter(plan.rate_per_minute and max(1, plan.rate_per_minute // plan.concurrency)),
    )  # fmt: skip


@task(name="wait-for-retries", cache_policy=NO_CACHE)
async def wait_for_retries(*, settings: Settings, plan: MailingPlan, at_most: float) -> bool:
    """Sleep until the next retry is due if that is within ``at_most`` seconds; say whether to go on."""
    due = await asyncio.to_thread(_next_retry, settings, plan)
    if due is None:
        return False
    delay = (due - datetime.now(UTC)).total_seconds()
    if delay > at_most:
        return False
    await asyncio.sleep(max(delay, 0) + 0.01)
    return True


def _next_retry(settings: Settings, plan: MailingPlan) -> datetime | None:
    with engine_for(settings.db_url).connect() as connection:
        return next_retry_at(
            connection, campaign_id=plan.campaign_id, step=plan.step, channel=Channel.EMAIL
        )


@task(name="publish-mailing-summary", cache_policy=NO_CACHE)
async def publish_mailing_summary(
    *, settings: Settings, plan: MailingPlan, added: int, run: dict[str, int]
) -> dict[str, int]:
    """Publish this step's outbox totals and this run's figures; return the totals."""
    counts = await asyncio.to_thread(_step_counts, settings, plan)
    labels = {
        MessageStatus.QUEUED: "en attente (nouvel essai prévu)",
        MessageStatus.SENDING: "en cours d'envoi",
        MessageStatus.SENT: "envoyés",
        MessageStatus.FAILED: "échecs après plusieurs essais",
        MessageStatus.BOUNCED: "adresses refusées",
        MessageStatus.CANCELLED: "annulés (désinscription)",
    }
    await acreate_table_artifact(
        key="mailing-summary",
        table=[{"état": labels[status], "messages": counts[status]} for status in MessageStatus],
        description=f"Campagne « {plan.campaign_name} », étape « {plan.step} » : totaux de la file d'envoi",
    )
    await acreate_markdown_artifact(
        key="mailing-run",
        markdown=(
            f"# Envoi « {plan.step} » — {plan.campaign_name}\n\n"
            f"- nouveaux messages mis en file : {added}\n"
            f"- envoyés pendant ce passage : {run.get('sent', 0)}\n"
            f"- refusés définitivement : {run.get('bounced', 0)}\n"
            f"- en attente d'un nouvel essai : {counts[MessageStatus.QUEUED]}\n"
            f"- annulés (désinscription) : {run.get('cancelled', 0)}\n"
        ),
        description="Bilan du passage",
    )
    return {status.value: counts[status] for status in MessageStatus}


def _step_counts(settings: Settings, plan: MailingPlan) -> dict[MessageStatus, int]:
    with engine_for(settings.db_url).connect() as connection:
        return step_counts(
            connection, campaign_id=plan.campaign_id, step=plan.step, channel=Channel.EMAIL
        )
