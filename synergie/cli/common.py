"""What every command group shares: the consoles, the error type, the settings, a session, progress bars.

Command modules import from here and never from each other, so the CLI has no import circle.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from synergie.settings import Settings, load_settings

console = Console()
err = Console(stderr=True)


class CliError(Exception):
    """An error to show staff as one line, without a traceback."""


def cli_settings() -> Settings:
    """Return the settings from the environment, with the data folders created."""
    settings = load_settings()
    settings.ensure_dirs()
    return settings


def actor() -> str:
    """Return who is acting, for stage histories: the staff member's login."""
    return f"staff:{getpass.getuser()}"


@contextmanager
def db_session() -> Iterator[Any]:
    """Yield a session on the configured database, committed on success; refuse an old schema."""
    from models.db import make_engine, require_schema, session_scope

    engine = make_engine(cli_settings().db_url)
    try:
        require_schema(engine)
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def prefect_notice() -> Iterator[None]:
    """Say that a temporary Prefect API is starting when none is configured (it takes a while)."""
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            "[dim]Aucun serveur Prefect configuré (PREFECT_API_URL) : démarrage d'une API locale "
            "temporaire, comptez 15 à 20 secondes…[/]"
        )
        # The temporary server's telemetry would call Prefect's servers, and at start-up it
        # races that server's own SQLite database, printing a "database is locked" traceback.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        # Its default 20 s start-up timeout is too short on a busy laptop: wait, rather than fail.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    yield


@contextmanager
def progress_bar() -> Iterator[None]:
    """Draw a bar for each kind of long work reported through ``synergie.messaging.progress``."""
    from synergie.messaging.progress import progress_to

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def sink(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what.capitalize(), total=total)
            progress.update(tasks[what], completed=done, total=total)

        with progress_to(sink):
            yield


# A secret absent from the environment may still be in a Prefect Secret block, which only the
# flow can read (it needs the API): before the flow, only the other settings are checked.
_SECRET_FROM_BLOCK = "(bloc Prefect Secret)"


def check_before_flow(settings: Settings, *, email: bool = False, sms: bool = False) -> None:
    """Refuse, before Prefect starts (15 s or more), a channel the settings leave half-configured."""
    from synergie.messaging.transports import check_email_settings, check_sms_settings

    if email:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        check_email_settings(settings, password=password or _SECRET_FROM_BLOCK)
    if sms:
        token = (
            settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
        )
        check_sms_settings(settings, auth_token=token or _SECRET_FROM_BLOCK)


def send_now(settings: Any, channel: Any) -> int:
    """Send the prepared messages of ``channel`` waiting in the outbox, without Prefect; return how many left."""
    from models.db import make_engine
    from models.enums import Channel, MessageStatus
    from synergie.messaging.optout_journal import apply_pending_opt_outs, journal_for
    from synergie.messaging.sending import SendPolicy, send_prepared
    from synergie.messaging.transports import email_backend, sms_backend

    if channel == Channel.SMS:
        token = settings.twilio_auth_token
        backend: Any = sms_backend(settings, auth_token=token.get_secret_value() if token else None)
    else:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        backend = email_backend(settings, password=password)
    policy = SendPolicy.from_settings(settings, actor=actor())
    engine = make_engine(settings.db_url)
    try:
        apply_pending_opt_outs(engine=engine, journal=journal_for(settings))
        outcome = send_prepared(
            engine=engine, backend=backend, channel=channel, limit=1000, policy=policy,
            now=lambda: datetime.now(UTC),
        )  # fmt: skip
    finally:
        engine.dispose()
    return outcome.statuses[MessageStatus.SENT]
