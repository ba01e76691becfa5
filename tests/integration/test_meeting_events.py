"""A portal answer, as a Prefect event, starts the meeting-sync deployment's run (real server, served deployments)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import Session, select

from models import Answer, Message, MessageStatus
from models.db import make_engine, upgrade_database
from synergie.meetings.lifecycle import invite_meeting
from synergie.messaging.links import rsvp_url
from synergie.settings import Settings
from tests.factories import NOW
from tests.integration.test_prefect_server import (  # noqa: F401 (the module-scoped server fixture)
    call,
    free_port,
    prefect_server,
    stop,
    wait_for,
)
from tests.synergie.meetings.conftest import build_territory

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_a_portal_answer_starts_the_meeting_sync_run_through_its_event_trigger(
    prefect_server: tuple[str, dict[str, str]],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, base_env = prefect_server
    db_url = f"sqlite:///{tmp_path / 'synergie.db'}"
    upgrade_database(db_url)
    synergie_env = {
        "SYNERGIE_DATA_DIR": str(tmp_path / "var"),
        "SYNERGIE_DATABASE_URL": db_url,
        "SYNERGIE_SECRET_KEY": "integration-test-key-0123456789",
    }
    for name, value in synergie_env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    settings.ensure_dirs()
    engine = make_engine(db_url)
    territory = build_territory(engine, settings, companies=3, capacity=5, now=NOW)
    with territory.session() as session:
        invite_meeting(session=session, meeting=territory.meeting(session), settings=settings,
                       templates=territory.templates, now=NOW)  # fmt: skip
        company = territory.companies[1]
        contact = territory.contact(session, company)
        session.commit()
    env = {**base_env, **synergie_env}
    port = free_port()
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("serve", "portal")}
    served = subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=env, cwd=ROOT,
                              stdout=logs["serve"], stderr=subprocess.STDOUT)  # fmt: skip
    portal = subprocess.Popen(
        [sys.executable, "-m", "synergie.cli.app", "portal", "--port", str(port)],
        env=env, cwd=ROOT, stdout=logs["portal"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=api, timeout=10) as client:
            deployment = wait_for(
                lambda: (r := client.get("/deployments/name/meeting_sync/meeting-sync")).status_code == 200 and r.json(),
                timeout=90, what="the served meeting-sync deployment", process=served,
            )  # fmt: skip
            # serve creates the deployment first, then its automations (the triggers).
            wait_for(
                lambda: len(call(client, "POST", "/automations/filter", json={})) >= 2,
                timeout=60, what="the event triggers", process=served,
            )  # fmt: skip
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/sante", timeout=2).status_code == 200,
                     timeout=60, what="the portal", process=portal)  # fmt: skip
            path = urlsplit(rsvp_url(settings, contact.public_id, territory.meeting_id, "oui")).path
            answered = httpx.post(f"http://127.0.0.1:{port}{path.rpartition('/')[0]}",
                                  data={"reponse": "oui", "personnes": "2"}, timeout=10)  # fmt: skip
            assert answered.status_code == 200 and "Inscription confirm" in answered.text

            def finished_run() -> dict | None:  # type: ignore[type-arg]
                runs = call(client, "POST", "/flow_runs/filter",
                            json={"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})  # fmt: skip
                started = [r for r in runs if r["parameters"].get("meeting_id") is not None]
                done = [
                    r for r in started if r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED")
                ]
                return done[0] if done else None

            run = wait_for(finished_run, timeout=120, what="the event-started run", process=served)
    finally:
        for process in (portal, served):
            stop(process)
        for log in logs.values():
            log.close()
    assert run["state"]["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
    assert int(run["parameters"]["meeting_id"]) == territory.meeting_id
    assert int(run["parameters"]["company_id"]) == company
    assert run["parameters"]["contact_public_id"] == contact.public_id
    with Session(engine) as session:
        registration = territory.registration(session, company)
        assert (registration.status, registration.people) == (Answer.REGISTERED, 2)
        [confirmation] = [m for m in session.exec(select(Message)) if "reponse" in m.step]
        assert confirmation.status == MessageStatus.SENT and confirmation.company_id == company
    engine.dispose()
    assert os.path.isdir(tmp_path / "var" / "outbox" / "email")
