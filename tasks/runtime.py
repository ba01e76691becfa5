"""What flows and tasks need from their run: secrets, the actor name, progress artifacts, one-line failures."""

from __future__ import annotations

import functools
import logging
import time
from uuid import UUID

import sqlalchemy as sa
from prefect.artifacts import (
    acreate_progress_artifact,
    aupdate_progress_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.blocks.system import Secret
from prefect.runtime import flow_run

from channels.base import EmailBackend, SmsBackend
from models.db import make_engine
from models.enums import Channel
from synergie.errors import person_errors
from synergie.messaging.progress import report_progress
from synergie.messaging.transports import email_backend, sms_backend
from synergie.settings import Settings

SMTP_PASSWORD_BLOCK = "synergie-smtp-password"
TWILIO_TOKEN_BLOCK = "synergie-twilio-auth-token"
IMAP_PASSWORD_BLOCK = "synergie-imap-password"


class OneLineForPersonErrors(logging.Filter):
    """Drops the traceback from Prefect's log of an error a person can cause: its message says it all.

    Prefect logs an exception raised in a flow or task with its whole traceback (70 lines for a
    missing campaign, before the one French line that matters). Bugs keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], person_errors()):
            record.exc_info = None
            record.exc_text = None
        return True


for _logger in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_logger).addFilter(OneLineForPersonErrors())


def _secret(value: object, block: str, wanted: bool) -> str | None:
    """A secret from the environment (already in Settings), else from a Prefect Secret block."""
    if value is not None:
        return value.get_secret_value()  # type: ignore[attr-defined]
    if not wanted:
        return None
    try:
        # _sync: even if called from an async task, never a coroutine where a password should be.
        return str(Secret.load(block, _sync=True).get())  # type: ignore[call-arg, union-attr]
    except (ValueError, RuntimeError):  # no such block
        return None


async def _asecret(value: object, block: str, wanted: bool) -> str | None:
    """``_secret`` for async tasks, where ``Secret.load`` would hand back a coroutine."""
    if value is not None or not wanted:  # no block to read: the same answer as _secret
        return _secret(value, block, wanted)
    try:
        return str((await Secret.aload(block)).get())  # type: ignore[attr-defined]
    except (ValueError, RuntimeError):  # no such block
        return None


def _smtp_password_wanted(settings: Settings) -> bool:
    return settings.email_backend == "smtp" and bool(settings.smtp_user)


def smtp_password(settings: Settings) -> str | None:
    """The SMTP password: SYNERGIE_SMTP_PASSWORD, else the Secret block, else none."""
    return _secret(settings.smtp_password, SMTP_PASSWORD_BLOCK, _smtp_password_wanted(settings))


async def asmtp_password(settings: Settings) -> str | None:
    """``smtp_password`` for async tasks."""
    return await _asecret(
        settings.smtp_password, SMTP_PASSWORD_BLOCK, _smtp_password_wanted(settings)
    )


def twilio_token(settings: Settings) -> str | None:
    """The Twilio auth token: SYNERGIE_TWILIO_AUTH_TOKEN, else the Secret block, else none."""
    return _secret(settings.twilio_auth_token, TWILIO_TOKEN_BLOCK, settings.sms_backend == "twilio")


def imap_password(settings: Settings) -> str | None:
    """The IMAP password: SYNERGIE_IMAP_PASSWORD, else the Secret block, else none."""
    return _secret(settings.imap_password, IMAP_PASSWORD_BLOCK, bool(settings.imap_host))


def backend_for(settings: Settings, channel: Channel) -> EmailBackend | SmsBackend:
    """The configured backend of ``channel``, its secret fetched from the environment or a block."""
    if channel == Channel.SMS:
        return sms_backend(settings, auth_token=twilio_token(settings))
    return email_backend(settings, password=smtp_password(settings))


@functools.cache
def engine_for(url: str) -> sa.Engine:
    """One engine (and its connection pool) per database for the whole process, not one per task."""
    return make_engine(url)


def current_actor() -> str:
    """``flow-run:<id>`` inside a flow run, else ``cli``: who to name in the stage history."""
    run_id = flow_run.get_id()
    return f"flow-run:{run_id}" if run_id else "cli"


class ProgressArtifact:
    """A Prefect progress artifact plus the CLI's progress sink, updated at most every few seconds."""

    def __init__(
        self, what: str, *, key: str, description: str, every_seconds: float = 2.0
    ) -> None:
        self.what = what
        self.every_seconds = every_seconds
        self._last = 0.0
        self._id: UUID | None = None
        self._key = key
        self._description = description

    def _percent_due(self, done: int, total: int) -> float | None:
        """Tell the CLI; return the percentage when the artifact is due an update, else None."""
        report_progress(self.what, done, total)
        now = time.monotonic()
        if now - self._last < self.every_seconds and done < total:
            return None
        self._last = now
        return 100.0 * done / total if total else 100.0

    def update(self, done: int, total: int) -> None:
        percent = self._percent_due(done, total)
        if percent is None:
            return
        if self._id is None:
            self._id = create_progress_artifact(
                progress=percent, key=self._key, description=self._description
            )  # type: ignore[assignment]
        else:
            update_progress_artifact(self._id, progress=percent)

    async def aupdate(self, done: int, total: int) -> None:
        """``update`` for async flows, where the sync artifact calls would return coroutines."""
        percent = self._percent_due(done, total)
        if percent is None:
            return
        if self._id is None:
            self._id = await acreate_progress_artifact(
                progress=percent, key=self._key, description=self._description
            )
        else:
            await aupdate_progress_artifact(self._id, progress=percent)
