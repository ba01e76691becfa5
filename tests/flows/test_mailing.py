"""The mailing flow under a real Prefect API and a real SMTP server: dry run, sends, crashes, races."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import get_current_settings
from sqlmodel import Session, func, select

from flows.mailing import MailingParams, mailing
from models import Message, MessageStatus
from models.db import make_engine
from tests.factories import luhn_siret
from tests.servers.smtp_server import SmtpTestServer

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[2]


def populate(url: str, companies: int) -> None:
    """A campaign and ``companies`` listed companies with one e-mail contact each, written in bulk."""
    engine = make_engine(url)
    now = "2026-11-02 09:00:00.000000" if url.startswith("sqlite") else "2026-11-02T09:00:00+00:00"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO campaign (name, year, communes, created_at) VALUES ('Test', 2026, '[]', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text("INSERT INTO company (id, siret, name, name_key, postcode, source, stage, created_at, updated_at) "
                    "VALUES (:id, :siret, :name, :key, '21700', 'listing', 'listed', :now, :now)"),
            [{"id": n, "siret": luhn_siret(5000 + n), "name": f"Entreprise {n:05d}", "key": f"entreprise {n:05d}", "now": now}
             for n in range(1, companies + 1)],
        )  # fmt: skip
        connection.execute(
            sa.text("INSERT INTO contact (company_id, public_id, identity, email, created_at) "
                    "VALUES (:id, :public, :identity, :email, :now)"),
            [{"id": n, "public": f"{n:032x}", "identity": f"email:c{n}@example.org", "email": f"c{n}@example.org", "now": now}
             for n in range(1, companies + 1)],
        )  # fmt: skip
    engine.dispose()


@pytest.fixture
def smtp_env(
    sqlite_settings, smtp_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {
        "SYNERGIE_EMAIL_BACKEND": "smtp",
        "SYNERGIE_SMTP_HOST": smtp_server.host,
        "SYNERGIE_SMTP_PORT": str(smtp_server.port),
        "SYNERGIE_SMTP_SECURITY": "none",
        "SYNERGIE_SMTP_TIMEOUT": "10",
        "SYNERGIE_SEND_LEASE_SECONDS": "2",
        "SYNERGIE_RETRY_BACKOFF_SECONDS": "0.05",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**values, "SYNERGIE_DATA_DIR": os.environ["SYNERGIE_DATA_DIR"],
            "SYNERGIE_DATABASE_URL": os.environ["SYNERGIE_DATABASE_URL"]}  # fmt: skip


def messages(url: str) -> list[Message]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = list(session.exec(select(Message)))
    engine.dispose()
    return rows


def test_the_form_default_is_a_dry_run_that_writes_nothing(sqlite_settings) -> None:  # type: ignore[no-untyped-def]
    populate(sqlite_settings.db_url, 5)
    assert MailingParams().dry_run is True
    assert run_mailing(MailingParams()) == {
        "would_send": 5,
        "outside_no_code": 0,
        "outside_other_commune": 0,
    }
    assert messages(sqlite_settings.db_url) == []
    assert list((sqlite_settings.outbox_dir).glob("**/*.eml")) == []


def test_a_run_sends_every_message_over_few_sessions_and_reports(
    smtp_env, smtp_server, sqlite_settings
) -> None:  # type: ignore[no-untyped-def]
    populate(sqlite_settings.db_url, 30)
    state = run_mailing(
        MailingParams(dry_run=False, batch_size=10, rate_per_minute=None), return_state=True
    )
    result = state.result()
    assert (result["enqueued"], result["run_sent"], result["sent"]) == (30, 30, 30)
    # One EHLO per batch, and one for the preflight's MAIL FROM probe.
    assert len(smtp_server.messages) == 30 and smtp_server.ehlo_count == 3 + 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    keys = {a.key for a in artifacts}
    assert {"mailing-summary", "mailing-run", "mailing-progress"} <= keys
    # A second run finds nothing left to send.
    again = run_mailing(MailingParams(dry_run=False, rate_per_minute=None))
    assert again["enqueued"] == 0 and again["run_sent"] == 0 and len(smtp_server.messages) == 30


def test_batches_in_parallel_share_the_run_and_send_each_message_once(
    smtp_env, smtp_server, sqlite_settings
) -> None:  # type: ignore[no-untyped-def]
    populate(sqlite_settings.db_url, 45)
    result = run_mailing(
        MailingParams(
            dry_run=False, batch_size=10, concurrency=3, max_per_run=40, rate_per_minute=None
        )
    )
    assert result["run_sent"] == 40 and result["queued"] == 5  # max_per_run holds across batches
    assert len({m.message_id for m in smtp_server.messages}) == len(smtp_server.messages) == 40
    assert smtp_server.ehlo_count == 4 + 1  # one session per batch of 10, one for the preflight


def test_a_half_configured_smtp_fails_before_anything_is_claimed(
    sqlite_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    populate(sqlite_settings.db_url, 3)
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "smtp")
    monkeypatch.delenv("SYNERGIE_SMTP_HOST", raising=False)
    state = run_mailing(MailingParams(dry_run=False), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="SYNERGIE_SMTP_HOST"):
        state.result()
    assert messages(sqlite_settings.db_url) == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SYNERGIE_REPLY_TO", "eit@example.org, accueil@example.org"),
        ("SYNERGIE_MAIL_FROM", "Économie positive"),  # with the file backend, no address at all
    ],
)
def test_a_settings_typo_fails_before_anything_is_claimed_and_marks_nobody(
    sqlite_settings, monkeypatch, setting: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    # Issue 9, item 2: the preflight passed, every message failed to compose, and every
    # contact got email_invalid_at.
    from models import Contact

    populate(sqlite_settings.db_url, 3)
    monkeypatch.setenv(setting, value)
    state = run_mailing(MailingParams(dry_run=False), return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=f"{setting} doit être une seule adresse"):
        state.result()
    assert messages(sqlite_settings.db_url) == []
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert [c for c in session.exec(select(Contact)) if c.email_invalid_at] == []
    engine.dispose()


def test_the_smtp_password_can_come_from_a_prefect_secret_block(
    smtp_env, sqlite_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from prefect.blocks.system import Secret

    from tasks.runtime import SMTP_PASSWORD_BLOCK

    populate(sqlite_settings.db_url, 3)
    with SmtpTestServer(credentials=("relais", "mot-de-passe-du-bloc")) as server:
        monkeypatch.setenv("SYNERGIE_SMTP_PORT", str(server.port))
        monkeypatch.setenv("SYNERGIE_SMTP_USER", "relais")
        monkeypatch.delenv("SYNERGIE_SMTP_PASSWORD", raising=False)
        Secret(value="mot-de-passe-du-bloc").save(SMTP_PASSWORD_BLOCK, overwrite=True)
        try:
            result = run_mailing(MailingParams(dry_run=False, rate_per_minute=None))
        finally:
            Secret.delete(SMTP_PASSWORD_BLOCK)
        assert result["run_sent"] == 3 and len(server.messages) == 3
        # One session for the preflight, one for the one batch, each logged in.
        assert server.logins == ["relais", "relais"]
    rows = messages(sqlite_settings.db_url)
    assert all("mot-de-passe" not in (m.last_error or "") for m in rows)


def run_mailing(params: MailingParams, **options: Any) -> Any:
    """The async flow, run to the end from a test."""
    return asyncio.run(mailing(params, **options))


def spawn(env: dict[str, str], *, limit: int, rate: int | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    code = (
        "import asyncio; from flows.mailing import MailingParams, mailing; "
        f"asyncio.run(mailing(MailingParams(dry_run=False, batch_size=50, max_per_run={limit}, rate_per_minute={rate})))"
    )
    child_env = {**os.environ, **env, "PREFECT_API_URL": str(get_current_settings().api.url),
                 "PREFECT_LOGGING_LEVEL": "WARNING"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=child_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def deliveries(server: SmtpTestServer) -> Counter[tuple[str | None, str]]:
    return Counter((m.message_id, rcpt) for m in server.messages for rcpt in m.rcpt_tos)


def test_killed_runs_lose_nothing_and_resend_at_most_one_message_per_kill(
    smtp_env, smtp_server, sqlite_settings
) -> None:  # type: ignore[no-untyped-def]
    total, kills = 2000, 3
    populate(sqlite_settings.db_url, total)
    rng = random.Random(20261129)
    for _ in range(kills):
        already = len(smtp_server.messages)
        target = already + rng.randint(50, 400)
        child = spawn(smtp_env, limit=total)
        deadline = time.monotonic() + 120
        while (
            len(smtp_server.messages) < target
            and child.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        child.send_signal(signal.SIGKILL)
        child.wait()
    final = spawn(smtp_env, limit=total)
    assert final.wait(timeout=240) == 0, final.stderr.read().decode()[-2000:]  # type: ignore[union-attr]

    received = deliveries(smtp_server)
    assert len({rcpt for _, rcpt in received}) == total  # none lost
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= kills
    rows = messages(sqlite_settings.db_url)
    assert len(rows) == total and {m.status for m in rows} == {MessageStatus.SENT}
    assert {m.message_id for m in rows} == {mid for mid, _ in received}


def test_two_runs_started_together_never_send_the_same_message_twice(
    smtp_env, smtp_server, sqlite_settings
) -> None:  # type: ignore[no-untyped-def]
    total = 600
    populate(sqlite_settings.db_url, total)
    # Each run checks the relay before it claims anything. Both checks are greeted only once
    # both processes have connected, however long one takes to start on a loaded machine, so
    # both claim at the same moment; throttled to ~80 messages/s each, neither can finish
    # the 600 alone before the other starts.
    smtp_server.greet_together(2)
    env = {**smtp_env, "SYNERGIE_SMTP_TIMEOUT": "240"}
    first, second = spawn(env, limit=total, rate=4800), spawn(env, limit=total, rate=4800)
    for child in (first, second):
        assert child.wait(timeout=240) == 0, child.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
    received = deliveries(smtp_server)
    assert len(received) == total and set(received.values()) == {1}
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        sent = session.exec(
            select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENT)
        ).one()
        runs = session.exec(select(Message.claimed_by).distinct()).all()
    assert sent == total
    assert len(runs) == 2  # both runs really took part


def test_an_unknown_campaign_fails_the_run_in_one_line_without_a_traceback(
    sqlite_settings, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from synergie.mailing.campaigns import CampaignNotFound

    with pytest.raises(CampaignNotFound):
        asyncio.run(mailing(MailingParams(campaign="Inconnue", dry_run=True)))
    prefect_records = [r for r in caplog.records if r.name.startswith("prefect.")]
    assert any("campagne inconnue : « Inconnue »" in r.getMessage() for r in prefect_records)
    assert [r.getMessage() for r in prefect_records if r.exc_info] == []
