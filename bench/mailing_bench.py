"""Mailing benchmark: the mailing flow against raw smtplib and against the same code without Prefect.

    python bench/mailing_bench.py [--messages 5000] [--batch-size 500] [--concurrency 1]

Each contender sends the same number of personalised messages to a local aiosmtpd
server running in its own process (one fresh server per contender, so its counters are
that contender's own):

  (a) raw smtplib: messages built beforehand, sent over one connection;
  (b) the ``mailing`` flow end to end (select, render, compose, outbox, send, record),
      timed with Prefect's API already up; the API's start is reported apart;
  (c) the same steps called as plain functions, without Prefect.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.enums import Channel  # noqa: E402

STEP = "premier-courrier"


@contextmanager
def smtp_server(stats_file: Path):  # type: ignore[no-untyped-def]
    """A local aiosmtpd in its own process; yields (host, port), then leaves its counters in stats_file."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.smtp_server", "--stats-file", str(stats_file)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        address = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        yield address["host"], address["port"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def stats(path: Path) -> dict[str, int]:
    return json.loads(path.read_text())


def prebuilt_messages(count: int, workdir: Path) -> list[tuple[str, bytes]]:
    """The very messages the flow sends (same templates, headers, sizes), rendered and composed beforehand."""
    from channels.mime import compose_email
    from models.db import make_engine
    from synergie.mailing import MailComposer, load_recipients, sender_domain
    from synergie.outbox import ClaimedMessage, message_key, new_message_id
    from synergie.rendering import MailTemplates
    from synergie.settings import Settings

    url = f"sqlite:///{workdir / 'prebuilt.db'}"
    populate(url, count)
    settings = Settings(data_dir=workdir, database_url=url)
    composer = MailComposer(settings=settings, templates=MailTemplates(), template=STEP)
    engine = make_engine(url)
    with engine.connect() as connection:
        recipients = load_recipients(connection, list(range(1, count + 1)))
    engine.dispose()
    built = []
    for contact_id, recipient in sorted(recipients.items()):
        key = message_key(
            campaign_id=1, step=STEP, recipient=f"contact:{contact_id}", channel=Channel.EMAIL
        )
        claimed = ClaimedMessage(id=contact_id, key=key, campaign_id=1, step=STEP, contact_id=contact_id,
                                 company_id=recipient.company_id, to_address=recipient.email,
                                 message_id=new_message_id(sender_domain(settings)), attempts=1, context=None)  # fmt: skip
        raw = compose_email(composer.compose(claimed, recipient), sender=settings.mail_from)
        built.append((recipient.email, raw))
    return built


def raw_smtplib(host: str, port: int, messages: list[tuple[str, bytes]]) -> float:
    """(a) Pre-built messages over one smtplib connection; return the seconds spent sending."""
    started = time.perf_counter()
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo()
        for to, data in messages:
            client.sendmail("eit@example.org", [to], data)
    return time.perf_counter() - started


def populate(url: str, count: int) -> None:
    """A campaign and ``count`` listed companies with one e-mail contact each."""
    import sqlalchemy as sa

    from models.db import make_engine, upgrade_database

    upgrade_database(url)
    engine = make_engine(url)
    now = "2026-11-02 09:00:00.000000"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO campaign (name, year, communes, created_at) VALUES ('Bench', 2026, '[]', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text("INSERT INTO company (id, name, name_key, postcode, commune, source, stage, created_at, updated_at) "
                    "VALUES (:id, :name, :key, '21700', 'Nuits-Saint-Georges', 'listing', 'listed', :now, :now)"),
            [{"id": n, "name": f"Entreprise {n:05d}", "key": f"entreprise {n:05d}", "now": now} for n in range(1, count + 1)],
        )  # fmt: skip
        connection.execute(
            sa.text("INSERT INTO contact (company_id, public_id, identity, name, email, created_at) "
                    "VALUES (:id, :public, :identity, :name, :email, :now)"),
            [{"id": n, "public": f"{n:032x}", "identity": f"email:c{n}@example.org", "name": f"Prénom Nom {n}",
              "email": f"c{n}@example.org", "now": now} for n in range(1, count + 1)],
        )  # fmt: skip
    engine.dispose()


def environment(data_dir: Path, host: str, port: int) -> dict[str, str]:
    return {
        "SYNERGIE_DATA_DIR": str(data_dir),
        "SYNERGIE_DATABASE_URL": f"sqlite:///{data_dir / 'synergie.db'}",
        "SYNERGIE_EMAIL_BACKEND": "smtp",
        "SYNERGIE_SMTP_HOST": host,
        "SYNERGIE_SMTP_PORT": str(port),
        "SYNERGIE_SMTP_SECURITY": "none",
    }


def plain_functions(count: int, batch_size: int, concurrency: int) -> float:
    """(c) Select, enqueue and send in batches through the same functions, no Prefect; return seconds.

    Like the flow, ``concurrency`` batches are on the wire at once, each in its own thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    from models.db import make_engine, session_scope
    from synergie.mailing import (
        MailComposer,
        SendPolicy,
        enqueue_recipients,
        find_campaign,
        select_recipients,
        send_batch,
        sender_domain,
    )  # fmt: skip
    from synergie.rendering import MailTemplates
    from synergie.settings import load_settings
    from synergie.transports import email_backend

    started = time.perf_counter()
    gc.freeze()  # as the flow does when it starts
    settings = load_settings()
    engine = make_engine(settings.db_url)
    with session_scope(engine) as session:
        campaign = find_campaign(session=session, name=None)
    with engine.begin() as connection:
        recipients = select_recipients(connection, campaign=campaign, step=STEP)
        enqueue_recipients(connection, recipients, campaign=campaign, step=STEP, domain=sender_domain(settings),
                           now=datetime.now(UTC))  # fmt: skip
    composer = MailComposer(
        settings=settings, templates=MailTemplates(settings.templates_dir), template=STEP
    )
    policy = SendPolicy(
        lease=timedelta(minutes=5), max_attempts=5, retry_base=timedelta(seconds=60), actor="bench"
    )

    def sender() -> int:
        sent = 0
        while True:
            backend = email_backend(settings, password=None)
            outcome = send_batch(engine=engine, backend=backend, composer=composer, campaign_id=campaign.id,
                                 step=STEP, limit=batch_size, policy=policy, now=lambda: datetime.now(UTC))  # fmt: skip
            if not outcome.claimed:
                return sent
            sent += outcome.claimed

    with ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(lambda _: sender(), range(concurrency)))
    assert total == count, total
    engine.dispose()
    return time.perf_counter() - started


def run_contender(
    name: str, count: int, batch_size: int, concurrency: int, workdir: Path
) -> dict[str, Any]:
    data_dir = workdir / name
    data_dir.mkdir()
    stats_file = workdir / f"{name}.json"
    with smtp_server(stats_file) as (host, port):
        if name == "a":
            seconds = raw_smtplib(host, port, prebuilt_messages(count, data_dir))
        else:
            populate(f"sqlite:///{data_dir / 'synergie.db'}", count)
            os.environ.update(environment(data_dir, host, port))
            if name == "c":
                seconds = plain_functions(count, batch_size, concurrency)
            else:
                from flows.mailing import MailingParams, mailing

                started = time.perf_counter()
                result = asyncio.run(mailing(MailingParams(dry_run=False, batch_size=batch_size, concurrency=concurrency,
                                                           max_per_run=count, rate_per_minute=None)))  # fmt: skip
                seconds = time.perf_counter() - started
                assert result["sent"] == count, result
    counters = stats(stats_file)
    assert counters["accepted"] == count, counters
    return {"seconds": seconds, "rate": count / seconds, **counters}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, help="default: the mailing flow's")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synergie-mailing-bench-") as tmp:
        workdir = Path(tmp)
        os.environ.update({"PREFECT_HOME": str(workdir / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                           "PREFECT_LOGGING_LEVEL": "WARNING"})  # fmt: skip
        os.environ.pop("PREFECT_API_URL", None)
        from flows.mailing import MailingParams

        args.batch_size = args.batch_size or MailingParams().batch_size
        from prefect.testing.utilities import prefect_test_harness

        results = {
            "a": run_contender("a", args.messages, args.batch_size, args.concurrency, workdir)
        }
        results["c"] = run_contender("c", args.messages, args.batch_size, args.concurrency, workdir)
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=120):
            api_start = time.perf_counter() - started
            results["b"] = run_contender(
                "b", args.messages, args.batch_size, args.concurrency, workdir
            )
    a, b, c = results["a"], results["b"], results["c"]
    batches = -(-args.messages // args.batch_size)
    print(f"{args.messages:,} personalised messages, batches of {args.batch_size}, {args.concurrency} batches at once, "
          "local aiosmtpd in its own process")  # fmt: skip
    print(
        f"(a) raw smtplib, pre-built, one connection : {a['rate']:7.0f} msg/s  ({a['seconds']:.2f} s, EHLO {a['ehlo']})"
    )
    print(
        f"(b) mailing flow, end to end               : {b['rate']:7.0f} msg/s  ({b['seconds']:.2f} s, EHLO {b['ehlo']} for {batches} batches)"
    )
    print(
        f"(c) same code without Prefect              : {c['rate']:7.0f} msg/s  ({c['seconds']:.2f} s, EHLO {c['ehlo']})"
    )
    print(f"Prefect temporary API start (apart)        : {api_start:.1f} s")
    print(f"throughput b/a = {b['rate'] / a['rate']:.2f} (goal >= 0.70); time b/c = {b['seconds'] / c['seconds']:.2f} "
          f"(goal <= 1.15); EHLO per batch = {b['ehlo'] / batches:.2f} (goal 1)")  # fmt: skip


if __name__ == "__main__":
    main()
