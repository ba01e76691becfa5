"""The portal over real HTTP: uvicorn on 127.0.0.1, the one-click POST a mail provider would send."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from models import Channel
from portal.app import create_app
from portal.events import OptOutEvent
from portal.server import redact_tokens
from synergie.settings import Settings
from tests.factories import NOW
from tests.portal.conftest import Portal, add_person, opt_out_rows, unsubscribe_path

REPO = Path(__file__).resolve().parents[2]
ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"Content-Type": "application/x-www-form-urlencoded"},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(base: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 90  # a ceiling, not a speed test: the machine may be loaded
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"portal exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{base}/sante", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("portal did not answer /sante within 90 s")


def test_one_click_over_http_answers_before_the_event_is_emitted(
    sqlite_portal: Portal,
) -> None:
    events: list[OptOutEvent] = []
    release = threading.Event()

    def slow_emit(event: OptOutEvent) -> None:
        release.wait(10)
        events.append(event)

    person = sqlite_portal.add_person()
    app = create_app(
        settings=sqlite_portal.settings, engine=sqlite_portal.engine, emit=slow_emit,
        clock=lambda: NOW,
    )  # fmt: skip
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_healthy(base)
        answer = httpx.post(base + sqlite_portal.path(person.public_id), timeout=5, **ONE_CLICK)  # type: ignore[arg-type]
        assert answer.status_code == 200 and "C'est noté" in answer.text
        # The person has their answer while the emitter is still busy.
        assert events == []
        assert sqlite_portal.opt_outs() == [(person.contact_id, Channel.EMAIL, "one-click", NOW)]
        release.set()
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [event.source for event in events] == ["one-click"]
    finally:
        release.set()
        server.should_exit = True
        thread.join(10)
        listener.close()


def test_serve_runs_the_portal_and_keeps_tokens_out_of_its_logs(
    sqlite_settings: Settings, sqlite_url: str
) -> None:
    engine = sa.create_engine(sqlite_url)
    person = add_person(engine)
    port = _free_port()
    code = (
        "import sys; from synergie.settings import load_settings; from portal.server import serve; "
        "serve(load_settings(), host='127.0.0.1', port=int(sys.argv[1]))"
    )
    # The settings fixture put SYNERGIE_DATA_DIR and SYNERGIE_DATABASE_URL in the environment.
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(port)], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_healthy(base, process)
        path = unsubscribe_path(sqlite_settings, person.public_id)
        answer = httpx.post(base + path, timeout=5, **ONE_CLICK)  # type: ignore[arg-type]
        assert answer.status_code == 200 and "C'est noté" in answer.text
        assert [row[1:3] for row in opt_out_rows(engine)] == [(Channel.EMAIL, "one-click")]
        assert httpx.get(f"{base}/desinscription/v1.AAAA.BBBB", timeout=5).status_code == 400
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
        engine.dispose()
    token = path.rsplit("/", 1)[1]
    assert token not in output and "v1.AAAA.BBBB" not in output
    assert '"POST /desinscription/<token> HTTP/1.1" 200' in output
    assert person.public_id in output  # what the logs may name: the contact's public id
    # serve() wires the Prefect emitter, which declines without an API instead of losing the event.
    assert "not emitted" in output


def test_redaction_masks_every_token_in_a_line() -> None:
    line = "GET /desinscription/v1.YWJj.ZGVm and /rsvp/v1.eHl6.MTIz?x=1"
    assert redact_tokens(line) == "GET /desinscription/<token> and /rsvp/<token>?x=1"
