"""The task that sends prepared outbox messages (call lists, invitations, reminders)."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.enums import Channel, MessageStatus
from synergie.messaging.optout_journal import apply_pending_opt_outs, journal_for
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
