"""The task that sends prepared outbox messages (call lists, invitations, reminders)."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.db import write_transaction
from models.enums import Channel, MessageStatus
from synergie.messaging.optout_journal import apply_pending_opt_outs, journal_for
from synergie.messaging.outbox import cancel_unwanted_everywhere
from synergie.messaging.sending import SendPolicy, send_prepared
from synergie.settings import Settings
from tasks.runtime import backend_for, current_actor, engine_for

# Prepared messages are few (a list per caller, an invitation per visit): one batch drains them.
SEND_LIMIT = 1000


@task(name="send-prepared", cache_policy=NO_CACHE)
def send_prepared_messages(*, settings: Settings, channel: Channel) -> dict[str, int]:
    """Send the prepared messages waiting on ``channel``; return the batch's statuses."""
    engine = engine_for(settings.db_url)
    # Opt-outs the portal could only journal are applied before the claim, which honours them.
    apply_pending_opt_outs(engine=engine, journal=journal_for(settings))
    outcome = send_prepared(
        engine=engine, backend=backend_for(settings, channel), channel=channel,
        limit=SEND_LIMIT, policy=SendPolicy.from_settings(settings, actor=current_actor()),
        now=lambda: datetime.now(UTC),
    )  # fmt: skip
    get_run_logger().info("%s: %d prepared message(s) claimed", channel.value, outcome.claimed)
    return {status.value: outcome.statuses[status] for status in MessageStatus}


@task(name="cancel-opted-out", cache_policy=NO_CACHE)
def cancel_opted_out_messages(*, settings: Settings, company_id: int | None) -> int:
    """Cancel the waiting messages of opted-out contacts (one company, or all); return how many."""
    with write_transaction(engine_for(settings.db_url)) as connection:
        cancelled = cancel_unwanted_everywhere(
            connection, company_id=company_id, now=datetime.now(UTC)
        )
    scope = "every company" if company_id is None else f"company {company_id}"
    get_run_logger().info(
        "opt-outs applied to %s: %d waiting message(s) cancelled", scope, cancelled
    )
    create_markdown_artifact(
        key="optout-sync",
        markdown=f"**Désinscriptions appliquées** ({'toutes les entreprises' if company_id is None else f'entreprise n° {company_id}'}) : "
        f"{cancelled} message(s) en attente annulé(s).",
        description="Messages en attente annulés après une désinscription",
    )
    return cancelled
