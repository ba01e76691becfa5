"""Meetings benchmark: invitations with their calendar parts against a plain mailing of as many messages.

    python bench/meetings_bench.py [--contacts 5000] [--rounds 3]

Same machinery as ``bench/mailing_bench.py`` (imported from it): a local aiosmtpd in its own
process, a fresh one per contender and round, each contender in a fresh process of its own with
Prefect's API already up and warm, contenders taken in turns, ratio of the medians:

  (m) the ``mailing`` flow end to end on ``--contacts`` plain personalised messages;
  (i) the ``meeting-invitations`` flow end to end on ``--contacts`` invited contacts: registrations,
      each contact's own iCalendar REQUEST (VTIMEZONE, VALARM, three signed links), French text
      and HTML, the outbox, and the sending, with a ``text/calendar; method=REQUEST`` part and an
      ``.ics`` attachment in every message.

Goal: invitations cost at most 1.5 times the plain mailing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mailing_bench import (  # noqa: E402 (after the path is set)
    environment,
    median,
    populate,
    run_contender,
    smtp_server,
    stats,
    warm_api,
)


def populate_meeting(url: str, count: int) -> int:
    """``count`` visited companies with one e-mail contact each, and a meeting in a month; return its id."""
    import sqlalchemy as sa

    from models.db import make_engine, session_scope
    from synergie.meetings.planning import add_meeting

    populate(url, count)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE company SET stage = 'visited'"))
    with session_scope(engine) as session:
        meeting = add_meeting(
            session=session, title="Rencontre de printemps", starts_at=datetime.now(UTC) + timedelta(days=30),
            now=datetime.now(UTC), domain="example.org", place="Salle des fêtes, 21700 Nuits-Saint-Georges",
            capacity=count, per_company=2,
        )  # fmt: skip
        meeting_id = meeting.id
    engine.dispose()
    return int(meeting_id or 0)


def invitations(count: int, data_dir: Path) -> dict[str, Any]:
    """Run contender (i) in a fresh process against a fresh SMTP server; return its figures."""
    data_dir.mkdir(parents=True)
    stats_file = data_dir / "smtp.json"
    with smtp_server(stats_file) as (host, port):
        url = f"sqlite:///{data_dir / 'synergie.db'}"
        env = {**os.environ, **environment(data_dir, host, port, url)}
        meeting_id = populate_meeting(url, count)
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(meeting_id), "--contacts", str(count)],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        seconds = json.loads(child.stdout.strip().splitlines()[-1])["seconds"]
    counters = stats(stats_file)
    assert counters["accepted"] == count, counters
    return {"seconds": seconds, "rate": count / seconds, **counters}


def child(meeting_id: int, count: int) -> float:
    """Time the meeting-invitations flow in this (fresh) process."""
    from flows.meeting_invitations import MeetingInvitationsParams, meeting_invitations

    started = time.perf_counter()
    result = meeting_invitations(MeetingInvitationsParams(meeting_id=meeting_id, dry_run=False))
    seconds = time.perf_counter() - started
    assert result["email_sent"] == count, result
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"seconds": child(args.child, args.contacts)}))
        return
    with tempfile.TemporaryDirectory(prefix="synergie-meetings-bench-") as tmp:
        workdir = Path(tmp)
        os.environ.update({"PREFECT_HOME": str(workdir / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                           "PREFECT_LOGGING_LEVEL": "WARNING"})  # fmt: skip
        os.environ.pop("PREFECT_API_URL", None)
        from prefect.settings import get_current_settings
        from prefect.testing.utilities import prefect_test_harness

        from flows.mailing import MailingParams

        batch_size = MailingParams().batch_size
        with prefect_test_harness(server_startup_timeout=120):
            os.environ["PREFECT_API_URL"] = str(get_current_settings().api.url)
            warm_dir = workdir / "warm"
            warm_dir.mkdir()
            warm_url = f"sqlite:///{warm_dir / 'synergie.db'}"
            populate(warm_url, 1)
            warm_api({**os.environ, **environment(warm_dir, "127.0.0.1", 1, warm_url)})
            runs: dict[str, list[dict[str, Any]]] = {"m": [], "i": []}
            for round_ in range(args.rounds):
                runs["m"].append(
                    run_contender("b", args.contacts, batch_size, 1, workdir / f"m{round_}")
                )
                print(f"round {round_ + 1}/{args.rounds} (mailing): {runs['m'][-1]['rate']:.0f} msg/s",
                      file=sys.stderr, flush=True)  # fmt: skip
                runs["i"].append(invitations(args.contacts, workdir / f"i{round_}"))
                print(f"round {round_ + 1}/{args.rounds} (invitations): {runs['i'][-1]['rate']:.0f} msg/s",
                      file=sys.stderr, flush=True)  # fmt: skip
    seconds = {name: median([r["seconds"] for r in results]) for name, results in runs.items()}
    print(
        f"{args.contacts:,} contacts, local aiosmtpd in its own process, median of {args.rounds} rounds in turns"
    )
    for name, label in (
        ("m", "(m) mailing flow, plain messages"),
        ("i", "(i) meeting-invitations flow, iCal"),
    ):
        rates = [r["rate"] for r in runs[name]]
        print(f"{label:36s}: {args.contacts / seconds[name]:6.0f} msg/s (range {min(rates):.0f}-{max(rates):.0f}; "
              f"{seconds[name]:.2f} s)")  # fmt: skip
    print(f"time i/m = {seconds['i'] / seconds['m']:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
