"""The Prefect UI and API are private: the shipped server unit and env files refuse a client without the auth string.

Lighter than the scale-out stack (which proves the same on PostgreSQL with workers): the
server is started from ``deploy/systemd/synergie-prefect-server.service`` with the settings
of ``deploy/env/prefect-server.env`` (its database on SQLite here), and Synergie's own
processes get the environment of ``deploy/env/synergie.env``, as the portal's unit does.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.stack import (
    ROOT,
    Service,
    free_port,
    read_env_file,
    read_unit,
    stack_settings,
    start_service,
    unit_environment,
    wait_for,
)

pytestmark = pytest.mark.integration

# What a Synergie process does with the API, through Prefect's own client and its settings:
# read the deployments (the CLI's notices, serve), then emit an event (the portal).
CLIENT = """
import asyncio
import sys
from datetime import UTC, datetime

import httpx
from prefect.client.orchestration import get_client

from portal.events import CallLoggedEvent, emit_call_logged

async def read() -> None:
    async with get_client() as client:
        print("deployments:", len(await client.read_deployments()))

try:
    asyncio.run(read())
except httpx.HTTPStatusError as exc:
    print("refused:", exc.response.status_code)
emit_call_logged(CallLoggedEvent(company_id=int(sys.argv[1]), company_siret="", task_id=1,
                                 caller_id=1, outcome="reached", stage="called",
                                 occurred=datetime.now(UTC)))
"""


class Private:
    """The server's API address, its auth string, and the environment of Synergie's processes."""

    def __init__(self, api: str, auth: str, env: dict[str, str], log: Path) -> None:
        self.api, self.auth, self.env, self.log = api, auth, env, log

    def run(self, script: str, *args: str, auth: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if not auth:
            del env["PREFECT_API_AUTH_STRING"]
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), *args], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def client(self, auth: str | None = None) -> httpx.Client:
        token = base64.b64encode((auth or self.auth).encode()).decode()
        return httpx.Client(
            base_url=self.api, headers={"Authorization": f"Basic {token}"}, timeout=30
        )


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    tmp = tmp_path_factory.mktemp("private-prefect")
    port = free_port()
    settings = stack_settings(
        api_port=port, prefect_db=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        crm_db=f"sqlite:///{tmp / 'synergie.db'}", tmp=tmp, smtp=("127.0.0.1", 25),
    )  # fmt: skip
    # The shipped files set both sides; the test gives them the same random string.
    assert read_env_file("prefect-server.env")["PREFECT_SERVER_API_AUTH_STRING"]
    assert read_env_file("synergie.env")["PREFECT_API_AUTH_STRING"]
    settings["prefect-server.env"]["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    settings["prefect-server.env"]["PREFECT_UI_ENABLED"] = "false"  # the API is what is guarded
    unit = read_unit("synergie-prefect-server.service")
    server: Service = start_service(unit, unit_environment(unit, settings), tmp)
    try:
        api = settings["synergie.env"]["PREFECT_API_URL"]
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200,
                 timeout=180, what="the Prefect server", process=server.process)  # fmt: skip
        portal = read_unit("synergie-portal.service")
        yield Private(
            api,
            settings["synergie.env"]["PREFECT_API_AUTH_STRING"],
            unit_environment(portal, settings),
            server.log_path,
        )
    finally:
        server.stop()


def test_the_api_answers_only_with_the_auth_string(private: Private) -> None:
    with httpx.Client(base_url=private.api, timeout=30) as anonymous:
        assert anonymous.post("/deployments/filter", json={}).status_code == 401
        assert anonymous.post("/flow_runs/filter", json={}).status_code == 401
        assert anonymous.get("/admin/settings").status_code == 401
    with private.client("admin:not-the-password") as wrong:
        assert wrong.post("/deployments/filter", json={}).status_code == 401
    with private.client() as client:
        assert client.post("/deployments/filter", json={}).status_code == 200
        assert client.post("/flow_runs/filter", json={}).status_code == 200


def test_synergie_processes_need_the_auth_string_of_their_env_file(private: Private) -> None:
    refused = private.run(CLIENT, "41", auth=False)
    assert "refused: 401" in refused.stdout, refused.stdout + refused.stderr[-2000:]
    allowed = private.run(CLIENT, "42")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "deployments: 0" in allowed.stdout, allowed.stdout + allowed.stderr[-2000:]
    # The portal's events: without the string the server took none; with it, it did.
    with private.client() as client:

        def companies() -> set[str]:
            answer = client.post(
                "/events/filter",
                json={"filter": {"event": {"name": ["synergie.call.logged"]}}, "limit": 50},
            )
            assert answer.status_code == 200, answer.text[:500]
            return {e["resource"]["prefect.resource.id"] for e in answer.json()["events"]}

        wait_for(lambda: "synergie.company.42" in companies(), timeout=60,
                 what="the event emitted with the auth string")  # fmt: skip
        assert companies() == {"synergie.company.42"}
