"""Test-wide fixtures: an isolated Prefect home, a fresh database per test, the Prefect harness."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Before anything imports prefect: never touch the developer's ~/.prefect nor a real server.
_PREFECT_HOME = tempfile.mkdtemp(prefix="synergie-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_API_URL"] = ""
os.environ.pop("PREFECT_API_KEY", None)
# The CLI's tables and sentences are asserted whole: the same wide console whether pytest runs
# in a terminal or in an xdist worker without one (Rich wraps at 80 columns there).
os.environ["COLUMNS"] = "200"
for _name in list(os.environ):
    if _name.startswith("SYNERGIE_") and _name != "SYNERGIE_TEST_POSTGRES_URL":
        del os.environ[_name]

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from models.db import make_engine, upgrade_database  # noqa: E402
from synergie.settings import Settings  # noqa: E402
from tests.servers.imap_server import (  # noqa: E402
    DOVECOT_MISSING,
    DovecotServer,
    ImapAccount,
    dovecot_binary,
)
from tests.servers.smtp_server import SmtpTestServer  # noqa: E402

POSTGRES_URL = os.environ.get("SYNERGIE_TEST_POSTGRES_URL", "")
NO_POSTGRES = (
    "PostgreSQL non testé : SYNERGIE_TEST_POSTGRES_URL n'est pas défini "
    "(.ci/postgres.sh démarre un serveur local et affiche l'URL)"
)


def _postgres_database() -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"synergie_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database URL: SQLite, and PostgreSQL when a server is given."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'synergie.db'}"
        upgrade_database(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    for url in _postgres_database():
        upgrade_database(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database URL (for tests that are not about the database)."""
    url = f"sqlite:///{tmp_path / 'synergie.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _settings_for(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    data_dir = tmp_path / "var"
    # Flows read their settings from the environment, as a worker does.
    monkeypatch.setenv("SYNERGIE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SYNERGIE_DATABASE_URL", url)
    settings = Settings()
    settings.ensure_dirs()
    return settings


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings (and SYNERGIE_* environment) pointing at the test's database and data dir."""
    return _settings_for(db_url, tmp_path, monkeypatch)


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return _settings_for(sqlite_url, tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def smtp_server(_smtp_server: SmtpTestServer) -> SmtpTestServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), with counters, records and faults reset."""
    _smtp_server.reset()
    return _smtp_server


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it takes 15–20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def _dovecot() -> Iterator[DovecotServer]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip(DOVECOT_MISSING)
    with DovecotServer(binary) as server:
        yield server


@pytest.fixture
def imap_account(_dovecot: DovecotServer) -> ImapAccount:
    """A real Dovecot IMAP server on 127.0.0.1 and a user of this test's own: an empty mailbox."""
    return _dovecot.new_account()


# A real browser (Debian's Chromium through Playwright) for any test that asks for one.
from tests.browser import browser, chromium, page  # noqa: E402, F401
