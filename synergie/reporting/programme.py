"""Build the programme's report from the database and write its HTML file: what the flow and CLI share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from models.db import session_scope
from synergie import french
from synergie.reporting.html import report_path, write_html
from synergie.reporting.report import Report, build_report, to_markdown
from synergie.settings import Settings


@dataclass(frozen=True)
class WrittenReport:
    report: Report
    markdown: str
    path: Path


def write_programme_report(
    *, engine: sa.Engine, settings: Settings, now: datetime, path: Path | None = None
) -> WrittenReport:
    """Compute the report now and write it as HTML (``path``, else one file per day in var/reports/)."""
    with session_scope(engine) as session:
        report = build_report(
            session=session,
            now=now,
            title=f"{settings.programme_name} : bilan de la démarche",
            tz=settings.tz,
        )
    when = french.moment(now, settings.tz, weekday=False)
    target = path or report_path(settings.reports_dir, now.astimezone(settings.tz))
    write_html(report, when=when, path=target)
    return WrittenReport(report, to_markdown(report, when=when), target)
