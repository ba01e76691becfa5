"""Mailing benchmark: the mailing flow against raw smtplib and against the same code without Prefect.

    python bench/mailing_bench.py [--messages 5000] [--batch-size 500] [--concurrency 1] [--rounds 3]
                                  [--database postgresql://user@host:port/postgres]

Each contender sends the same number of personalised messages to a local aiosmtpd
server running in its own process (one fresh server per contender and round, so its
counters are that contender's own), from a fresh process of its own, as a deployment
run would (imports are not timed):

  (a) raw smtplib: messages built beforehand, sent over one connection;
  (b) the ``mailing`` flow end to end (select, render, compose, outbox, send, record),
      timed with Prefect's API already up and warm (one dry run first); the API's
      start is reported apart;
  (c) the same steps called as plain functions, without Prefect.

The contenders take turns (a, c, b) for ``--rounds`` rounds; the ratios are those of
the medians, and each contender's range is shown beside it: this machine is shared.

``--database`` names a PostgreSQL server: (b) and (c) then each get a fresh database on
it (created and dropped by the bench), as a territory beyond one laptop runs; by default
each gets a fresh SQLite file.
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
import uuid
from collections.abc import Iterator
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
    from synergie.mailing.campaigns import MailComposer, load_recipients, sender_domain
    from synergie.messaging.outbox import ClaimedMessage, message_key, new_message_id
    from synergie.messaging.rendering import MailTemplates
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


@contextmanager
def fresh_database(server: str | None, data_dir: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file in ``data_dir``, or one on the PostgreSQL ``server``."""
    if not server:
        yield f"sqlite:///{data_dir / 'synergie.db'}"
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from models.db import normalise_url

    admin = sa.create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    name = f"synergie_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(normalise_url(server)).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def environment(data_dir: Path, host: str, port: int, database_url: str) -> dict[str, str]:
    return {
        "SYNERGIE_DATA_DIR": str(data_dir),
        "SYNERGIE_DATABASE_URL": database_url,
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
    from synergie.mailing.campaigns import (  # fmt: skip
        MailComposer,
        SendPolicy,
        enqueue_recipients,
        find_campaign,
        select_recipients,
        send_batch,
        sender_domain,
    )
    from synergie.messaging.rendering import MailTemplates
    from synergie.messaging.transports import email_backend
    from synergie.settings import load_settings

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


def warm_api(env: dict[str, str]) -> float:
    """Run the flow once as a dry run (another process); return the seconds it took.

    A server just started answers the first request on each route in 0.15-0.35 s: a
    long-running API has long done that.
    """
    started = time.perf_counter()
    code = "import asyncio; from flows.mailing import MailingParams, mailing; asyncio.run(mailing(MailingParams()))"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run_contender(
    name: str,
    count: int,
    batch_size: int,
    concurrency: int,
    data_dir: Path,
    warm: bool = False,
    database: str | None = None,
) -> dict[str, Any]:
    """Run contender ``name`` in a fresh process against a fresh SMTP server and database; return its figures."""
    data_dir.mkdir(parents=True)
    stats_file = data_dir / "smtp.json"
    with smtp_server(stats_file) as (host, port), fresh_database(database, data_dir) as url:
        env = {**os.environ, **environment(data_dir, host, port, url)}
        if name != "a":
            populate(url, count)
        if warm:
            warm_api(env)
        child = subprocess.run(
            [sys.executable, __file__, "--child", name, "--data-dir", str(data_dir), "--messages", str(count),
             "--batch-size", str(batch_size), "--concurrency", str(concurrency)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        seconds = json.loads(child.stdout.strip().splitlines()[-1])["seconds"]
    counters = stats(stats_file)
    assert counters["accepted"] == count, counters
    return {"seconds": seconds, "rate": count / seconds, **counters}


def child(name: str, data_dir: Path, count: int, batch_size: int, concurrency: int) -> float:
    """Time one contender in this (fresh) process; the SMTP server and data are ready."""
    host, port = os.environ["SYNERGIE_SMTP_HOST"], int(os.environ["SYNERGIE_SMTP_PORT"])
    if name == "a":
        return raw_smtplib(host, port, prebuilt_messages(count, data_dir))
    if name == "c":
        return plain_functions(count, batch_size, concurrency)
    from flows.mailing import MailingParams, mailing

    params = MailingParams(dry_run=False, batch_size=batch_size, concurrency=concurrency, max_per_run=count,
                           rate_per_minute=None)  # fmt: skip
    started = time.perf_counter()
    result = asyncio.run(mailing(params))
    seconds = time.perf_counter() - started
    assert result["sent"] == count, result
    return seconds


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, help="default: the mailing flow's")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database", help="a PostgreSQL server URL (postgresql://…); default: SQLite files"
    )
    parser.add_argument("--child", choices=["a", "b", "c"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        seconds = child(args.child, args.data_dir, args.messages, args.batch_size, args.concurrency)
        print(json.dumps({"seconds": seconds}))
        return
    with tempfile.TemporaryDirectory(prefix="synergie-mailing-bench-") as tmp:
        workdir = Path(tmp)
        os.environ.update({"PREFECT_HOME": str(workdir / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                           "PREFECT_LOGGING_LEVEL": "WARNING"})  # fmt: skip
        os.environ.pop("PREFECT_API_URL", None)
        from prefect.settings import get_current_settings
        from prefect.testing.utilities import prefect_test_harness

        from flows.mailing import MailingParams

        args.batch_size = args.batch_size or MailingParams().batch_size
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=120):
            api_start = time.perf_counter() - started
            os.environ["PREFECT_API_URL"] = str(get_current_settings().api.url)
            runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
            for round_ in range(args.rounds):
                for name in ("a", "c", "b"):
                    runs[name].append(run_contender(
                        name, args.messages, args.batch_size, args.concurrency, workdir / f"{name}{round_}",
                        warm=name == "b" and round_ == 0, database=args.database,
                    ))  # fmt: skip
                    print(f"round {round_ + 1}/{args.rounds} ({name}): {runs[name][-1]['rate']:.0f} msg/s",
                          file=sys.stderr, flush=True)  # fmt: skip
    report(runs, args, api_start)


def report(
    runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, api_start: float
) -> None:
    seconds = {name: median([r["seconds"] for r in results]) for name, results in runs.items()}
    batches = -(-args.messages // args.batch_size)
    labels = {"a": "(a) raw smtplib, pre-built, one connection", "b": "(b) mailing flow, end to end",
              "c": "(c) same code without Prefect"}  # fmt: skip
    database = "PostgreSQL" if args.database else "SQLite"
    print(f"{args.messages:,} personalised messages, batches of {args.batch_size}, {args.concurrency} batch(es) at once, "
          f"{database} database, local aiosmtpd in its own process; median of {args.rounds} rounds taken in turn (a, c, b)")  # fmt: skip
    for name in ("a", "b", "c"):
        rates = [r["rate"] for r in runs[name]]
        ehlo = max(r["ehlo"] for r in runs[name])
        print(f"{labels[name]:43s}: {args.messages / seconds[name]:7.0f} msg/s  "
              f"(range {min(rates):.0f}-{max(rates):.0f}; {seconds[name]:.2f} s; EHLO {ehlo})")  # fmt: skip
    print(f"Prefect temporary API start (apart)        : {api_start:.1f} s")
    # The flow opens one session of its own before its first batch, to check that the relay
    # takes our sender (MAIL FROM, then RSET): not a batch's.
    ehlo_per_batch = (max(r["ehlo"] for r in runs["b"]) - 1) / batches
    print(f"throughput b/a = {seconds['a'] / seconds['b']:.2f} (goal >= 0.70); time b/c = "
          f"{seconds['b'] / seconds['c']:.2f} (goal <= 1.15); EHLO per batch = {ehlo_per_batch:.2f} (goal 1; "
          "the run's relay check apart)")  # fmt: skip


if __name__ == "__main__":
    main()
