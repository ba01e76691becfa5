"""The scale-out stack, stood up once per test module that uses it, and stopped when that module ends."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack, say, synergie_stack
from tests.servers.smtp_server import SmtpTestServer

NO_POSTGRES_STACK = (
    "pile de production non testée : SYNERGIE_TEST_POSTGRES_URL n'est pas défini "
    "(.ci/postgres.sh démarre un serveur local et affiche l'URL)"
)


@pytest.fixture(scope="module")
def stack_smtp() -> Iterator[SmtpTestServer]:
    """The SMTP server the stack's workers send to (its own, so that no other test resets it)."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    stack_smtp: SmtpTestServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Stack]:
    """Prefect server on PostgreSQL, two workers, the deployments, the CRM on PostgreSQL, the portal."""
    postgres = os.environ.get("SYNERGIE_TEST_POSTGRES_URL", "")
    if not postgres:
        pytest.skip(NO_POSTGRES_STACK)
    started = time.monotonic()
    with synergie_stack(
        postgres, tmp_path_factory.mktemp("stack"), (stack_smtp.host, stack_smtp.port)
    ) as running:
        phases = ", ".join(f"{k} at {v:.0f} s" for k, v in running.timings.items())
        say(request, f"scale-out stack up in {time.monotonic() - started:.0f} s ({phases})")
        yield running
    say(request, f"scale-out stack: {time.monotonic() - started:.0f} s from start to stop")
