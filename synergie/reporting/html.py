"""The report as one self-contained French HTML file: tables, notes and inline SVG charts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from synergie.reporting.report import NO_DATA, Report


def render_html(report: Report, *, when: str) -> str:
    """Return the whole page: no external file, font or script, printable on A4."""
    from synergie.reporting.charts import svg

    env = Environment(
        loader=PackageLoader("templates", "report"), autoescape=select_autoescape(["html", "j2"])
    )
    charts = {s.key: svg(s.chart) for s in report.sections if s.chart is not None}
    return env.get_template("rapport.html.j2").render(
        report=report, when=when, charts=charts, no_data=NO_DATA
    )


def write_html(report: Report, *, when: str, path: Path) -> Path:
    """Write the page to ``path`` (its folder created), through a temporary file: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(render_html(report, when=when), encoding="utf-8")
    partial.replace(path)
    return path


def report_path(reports_dir: Path, when: datetime) -> Path:
    """``var/reports/rapport-2026-11-30.html``: one file per day, the day's last run wins."""
    return reports_dir / f"rapport-{when.date().isoformat()}.html"
