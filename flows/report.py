"""The ``report`` flow: the programme's results (funnel, hours, synergies, km and CO2e) each month."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from synergie.settings import load_settings
from tasks.reporting import publish_report, write_report


@flow(name="report")
def report() -> str:
    """Compute the report, write its HTML file in var/reports/ and publish it as artifacts."""
    settings = load_settings()
    settings.ensure_dirs()
    written = write_report(settings=settings, now=datetime.now(UTC))
    publish_report(written)
    return str(written.path)


if __name__ == "__main__":
    report()
