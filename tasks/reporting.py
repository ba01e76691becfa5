"""Tasks of the report flow: compute and write the report, publish it as Prefect artifacts."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from synergie.reporting.programme import WrittenReport, write_programme_report
from synergie.reporting.report import to_table_rows
from synergie.settings import Settings
from tasks.runtime import engine_for


@task(cache_policy=NO_CACHE)
def write_report(*, settings: Settings, now: datetime) -> WrittenReport:
    """Compute the report from the database and write its HTML file."""
    written = write_programme_report(engine=engine_for(settings.db_url), settings=settings, now=now)
    get_run_logger().info("Report written to %s", written.path)
    return written


@task(cache_policy=NO_CACHE)
def publish_report(written: WrittenReport) -> None:
    """One markdown artifact for the whole report and one table artifact per section with a table."""
    create_markdown_artifact(
        key="programme-report", markdown=written.markdown + f"\n\nFichier : `{written.path}`",
        description="Bilan de la démarche",
    )  # fmt: skip
    for section in written.report.sections:
        if section.rows:
            create_table_artifact(
                key=f"report-{section.key}", table=to_table_rows(section),
                description=section.title,
            )  # fmt: skip
