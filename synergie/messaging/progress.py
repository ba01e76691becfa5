"""A place for long work to report progress, so the CLI can draw a bar while a flow runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ProgressSink = Callable[[str, int, int], None]
"""Called with (what, done, total)."""

_sink: ContextVar[ProgressSink | None] = ContextVar("synergie_progress_sink", default=None)


@contextmanager
def progress_to(sink: ProgressSink) -> Iterator[None]:
    """Send progress reported inside this block (flows run in-process included) to ``sink``."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def report_progress(what: str, done: int, total: int) -> None:
    """Tell the current sink, if any, how far ``what`` has got."""
    sink = _sink.get()
    if sink is not None:
        sink(what, done, total)
