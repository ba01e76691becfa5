"""The HTML report in a real Chromium: it shows the reference case's figures and prints to PDF."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session

from models.db import make_engine
from synergie.reporting.programme import write_programme_report
from synergie.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing, screenshot
from tests.factories import NOW
from tests.synergie.reporting.seed_case import build_seed_territory


@pytest.fixture
def page() -> Iterator[Any]:
    """A Chromium page closed with its Playwright at the end of the test.

    Not the session-wide ``browser`` fixture of tests/browser.py: while Playwright's sync API
    is open its event loop runs on the main thread, and Prefect's sync calls made by later
    tests (``flow.to_deployment`` in tests/deployments) then return coroutines.
    """
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(locale="fr-FR", viewport={"width": 1000, "height": 900})
        yield context.new_page()
        browser.close()


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
    assert "pas encore de données" in page.locator("section#meetings").inner_text()
    screenshot(page, "rapport")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
