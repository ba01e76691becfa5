"""What a task needs from its run: the actor name for history rows and throttled progress artifacts."""

from __future__ import annotations

import functools
import time
from uuid import UUID

import sqlalchemy as sa
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from models.db import make_engine
from synergie.progress import report_progress


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

    def update(self, done: int, total: int) -> None:
        report_progress(self.what, done, total)
        now = time.monotonic()
        if now - self._last < self.every_seconds and done < total:
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        if self._id is None:
            self._id = create_progress_artifact(
                progress=percent, key=self._key, description=self._description
            )  # type: ignore[assignment]
        else:
            update_progress_artifact(self._id, progress=percent)
