"""End to end against a real ``prefect server start``: serve the deployments, run one as staff would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models import Campaign
from models.db import make_engine, session_scope, upgrade_database
from tests.factories import luhn_siret, write_csv

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check, *, timeout: float, what: str, process: subprocess.Popen | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}")
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """One API call, retried like Prefect's own client does when its SQLite answers 503/429."""
    for attempt in range(10):
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        if response.status_code not in (429, 503):
            assert response.is_success, (
                f"{method} {url}: {response.status_code} {response.text[:500]}"
            )
            return response.json()
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError(f"{method} {url}: still {response.status_code} after retries")


def stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_UI_ENABLED": "false",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )  # fmt: skip
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200,
                 timeout=120, what="prefect server", process=server)  # fmt: skip
        yield api, env
    finally:
        stop(server)
        log.close()


def run_to_the_end(
    client: httpx.Client,
    deployment_id: str,
    params: dict[str, Any],
    served: subprocess.Popen,
    tmp_path: Path,  # type: ignore[type-arg]
) -> list[dict[str, Any]]:
    """Start a run of the deployment as the UI does, wait for it to complete, return its artifacts."""
    run = call(
        client,
        "POST",
        f"/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"params": params}},
    )
    final = wait_for(
        lambda: (state := call(client, "GET", f"/flow_runs/{run['id']}")["state"])["type"]
        in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        and state,
        timeout=120, what="the flow run", process=served,
    )  # fmt: skip
    assert final["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    return call(  # type: ignore[no-any-return]
        client,
        "POST",
        "/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}},
    )


def test_staff_start_the_import_and_mailing_deployments_and_see_their_reports(
    prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api, base_env = prefect_server
    db_url = f"sqlite:///{tmp_path / 'synergie.db'}"
    upgrade_database(db_url)
    listing = write_csv(
        tmp_path / "liste.csv",
        f"siret;raison_sociale;code_postal;courriel\n{luhn_siret(11)};Une Entreprise;21700;dirigeant@example.org\n"
        "x;Sans SIRET valide;21700;\n",
    )
    with session_scope(make_engine(db_url)) as session:
        session.add(Campaign(name="Intégration", year=2026, communes=[]))
    env = {**base_env, "SYNERGIE_DATA_DIR": str(tmp_path / "var"), "SYNERGIE_DATABASE_URL": db_url}
    log = (tmp_path / "serve.log").open("w")
    served = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=api, timeout=10) as client:
            deployment = wait_for(
                lambda: (r := client.get("/deployments/name/import_listing/import-listing")).status_code == 200
                and r.json(),
                timeout=90, what="the served deployment", process=served,
            )  # fmt: skip
            # What the UI's "Run" form posts: the parameters model, dry run switched off.
            artifacts = run_to_the_end(
                client, deployment["id"], {"path": str(listing), "dry_run": False}, served, tmp_path
            )
            mailing = call(client, "GET", "/deployments/name/mailing/mailing")
            # The (async) mailing flow, started from the UI with its dry run unticked.
            mailing_artifacts = run_to_the_end(
                client, mailing["id"], {"dry_run": False, "rate_per_minute": None}, served, tmp_path
            )
    finally:
        stop(served)
        log.close()
    by_key = {a["key"]: a for a in artifacts if a["key"]}
    assert "| Entreprises créées | 1 |" in by_key["import-listing"]["data"]
    assert "SIRET invalide" in str(by_key["import-listing-rejects"]["data"])
    assert any(a["type"] == "progress" for a in artifacts)
    # The weekly mailing sends for real; the form staff fill by hand defaults to a dry run.
    [weekly] = mailing["schedules"]
    assert (
        weekly["schedule"]["cron"] == "0 9 * * 2"
        and weekly["schedule"]["timezone"] == "Europe/Paris"
    )
    assert weekly["parameters"] == {"params": {"dry_run": False}}
    assert {"mailing-summary", "mailing-run", "mailing-progress"} <= {
        a["key"] for a in mailing_artifacts
    }
    [eml] = (tmp_path / "var" / "outbox").glob("**/*.eml")
    assert b"dirigeant@example.org" in eml.read_bytes()
    form = mailing["parameter_openapi_schema"]["definitions"]["MailingParams"]["properties"]
    assert form["dry_run"]["default"] is True
