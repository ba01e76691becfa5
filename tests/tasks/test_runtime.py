"""Prefect's run logs keep tracebacks for bugs and drop them for errors a person can cause."""

from __future__ import annotations

import logging
import sys

from synergie.mailing.campaigns import CampaignNotFound
from tasks.runtime import OneLineForPersonErrors


def _record(exc: Exception) -> logging.LogRecord:
    try:
        raise exc
    except Exception:
        info = sys.exc_info()
    return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed", (), info)


def test_a_person_error_is_logged_as_one_line() -> None:
    record = _record(CampaignNotFound("campagne inconnue"))
    assert OneLineForPersonErrors().filter(record) and record.exc_info is None


def test_a_bug_keeps_its_traceback() -> None:
    record = _record(KeyError("bug"))
    assert OneLineForPersonErrors().filter(record) and record.exc_info is not None


def test_the_filter_sits_on_prefects_run_loggers() -> None:
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        assert any(isinstance(f, OneLineForPersonErrors) for f in logging.getLogger(name).filters)
