"""A real browser for the tests: Debian's Chromium driven by Playwright for Python.

Chromium is started once per session (``chromium``); each test gets a Playwright ``browser``
connected to it over the DevTools protocol, and a fresh ``page`` (its own context: no cookie
left over from another test). Playwright's sync API keeps an asyncio loop running in the
thread while it is started, which would make every later ``asyncio.run`` fail: so Playwright
itself lives only for the length of one test, while the browser process lives for the session.

Playwright never downloads a browser here (no ``playwright install``): it drives
``/usr/bin/chromium`` (``apt-get install -y chromium``; ``.ci/run`` installs it when missing).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["SCREENSHOTS", "browser", "chromium", "chromium_missing", "page", "screenshot"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI: Chromium's sandbox refuses to run
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
_DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_missing() -> str | None:
    """Return why a real browser cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return "navigateur non testé : /usr/bin/chromium est absent (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "navigateur non testé : playwright n'est pas installé (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[str]:
    """Debian's Chromium, headless, for the whole session; yields its DevTools WebSocket URL."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    profile = Path(tempfile.mkdtemp(prefix="synergie-chromium-"))
    log_path = profile / "chromium.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             *CHROMIUM_ARGS, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (found := _DEVTOOLS.search(log_path.read_text(errors="replace"))):
            if process.poll() is not None:
                raise AssertionError(
                    f"Chromium exited with {process.returncode}: {log_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("Chromium did not print its DevTools address within 60 s")
            time.sleep(0.1)
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    """A Playwright browser connected to the session's Chromium, for this test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        connected = driver.chromium.connect_over_cdp(chromium)
        try:
            yield connected
        finally:
            connected.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (French, Paris time, a laptop-sized window)."""
    context = browser.new_context(
        locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 1400, "height": 900}
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``var/screenshots/NAME.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
