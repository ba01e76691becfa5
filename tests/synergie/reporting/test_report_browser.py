"""The HTML report in a real Chromium: it shows the reference case's figures and prints to PDF."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.db import make_engine
from synergie.reporting.programme import write_programme_report
from synergie.settings import Settings
from tests.browser import screenshot
from tests.factories import NOW
from tests.synergie.reporting.seed_case import build_seed_territory


def test_the_report_opens_in_chromium_with_its_charts(page: Any, sqlite_settings: Settings) -> None:
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        build_seed_territory(session)
        session.commit()
    written = write_programme_report(engine=engine, settings=sqlite_settings, now=NOW)
    engine.dispose()
    page.goto(written.path.as_uri())
    assert page.locator("h1").inner_text().endswith("bilan de la démarche")
    assert page.locator("section#funnel table").is_visible()
    impact = page.locator("section#impact").inner_text()
    assert "12\u00a0960 km de poids lourds évités par an, 15,4 tCO2e" in impact
    # Every chart is drawn inline and has a size on screen.
    charts = page.locator("figure svg")
    assert charts.count() >= 3
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert "pas encore de données" in page.locator("section#surveys").inner_text()
    screenshot(page, "rapport")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
