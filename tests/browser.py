"""A real browser for tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``), never a downloaded one.

Import the fixtures where needed (``from tests.browser import browser, page``). Without Chromium
the tests that use them are skipped, with the reason; ``.ci/run`` installs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Root needs the sandbox off; the rest keeps a headless Chromium from calling out or updating.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"


def chromium_missing() -> str | None:
    """Return why a real browser cannot run here, or None when it can."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return "Chromium absent (/usr/bin/chromium) : « apt-get install -y chromium » (fait par .ci/run)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright absent : pip install -e '.[test]'"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no cookies shared between tests), French, JavaScript on."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1000, "height": 900})
    yield context.new_page()
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under ``var/screenshots/`` for people to look at; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
