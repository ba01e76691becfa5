"""Issue 9, item 6: a one-click unsubscribe is answered at once and never lost while the database is locked.

Before, with a write transaction held (an import holds one for the whole file), an RFC 8058
POST answered 500 after SQLite's 30 s busy timeout and nothing was recorded.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from models import Campaign, Channel, Message, Stage
from synergie.messaging.optout_journal import (
    OptOutRequest,
    apply_pending_opt_outs,
    journal_for,
)
from synergie.settings import Settings
from tests.factories import NOW
from tests.portal.conftest import Person, Portal, add_person

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@contextmanager
def write_lock_held(engine: sa.Engine) -> Iterator[None]:
    """Hold what an import holds: SQLite's write lock, or PostgreSQL locks on the opt-out tables."""
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(make_url(engine.url).database or "", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with engine.connect() as holder, holder.begin() as transaction:
        # EXCLUSIVE lets readers in but no writer: what an import's upserts hold, and more.
        holder.exec_driver_sql("LOCK TABLE opt_out, contact, company IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            transaction.rollback()


def post_while_locked(portal: Portal, path: str, **request: Any) -> tuple[Any, bool]:
    """POST ``path`` while the lock is held; return the answer and whether the lock was still held then."""
    answered_under_lock: list[bool] = []
    answer: list[Any] = []
    released = threading.Event()

    def post() -> None:
        answer.append(portal.client.post(path, **request))
        answered_under_lock.append(not released.is_set())

    with write_lock_held(portal.engine):
        thread = threading.Thread(target=post)
        thread.start()
        thread.join(timeout=20)  # far longer than the answer may take; released after it anyway
        released.set()
    thread.join(timeout=60)
    return answer[0], answered_under_lock[0]


def test_a_one_click_post_is_answered_while_the_database_is_locked_then_recorded(
    portal: Portal, person: Person
) -> None:
    answer, under_lock = post_while_locked(
        portal, portal.path(person.public_id), content=ONE_CLICK, headers={"Content-Type": FORM}
    )

    assert under_lock, "the answer waited for the lock to be released"
    assert answer.status_code == 200 and "Votre demande est enregistrée" in answer.text
    # The portal's background applier takes it as soon as the lock is gone.
    assert portal.client.app.state.journal_applier.wait(timeout=60)  # type: ignore[attr-defined]
    assert portal.opt_outs() == [(person.contact_id, Channel.EMAIL, "one-click", NOW)]
    assert [(e.contact_public_id, e.source) for e in portal.events] == [
        (person.public_id, "one-click")
    ]
    assert not journal_for(portal.settings).has_pending()


def test_never_again_under_lock_moves_the_company_once_applied(
    portal: Portal, person: Person
) -> None:
    answer, under_lock = post_while_locked(
        portal, portal.path(person.public_id), data={"scope": "all"}
    )

    assert under_lock and answer.status_code == 200
    assert "ni par e-mail, ni par SMS, ni par téléphone" in answer.text
    assert portal.client.app.state.journal_applier.wait(timeout=60)  # type: ignore[attr-defined]
    assert {row[1] for row in portal.opt_outs()} == set(Channel)
    assert portal.stage(person.company_id) == Stage.OPTED_OUT


@pytest.mark.usefixtures("prefect_harness")
def test_the_next_mailing_applies_the_journal_first_and_skips_that_contact(
    make_portal: Callable[..., Portal], settings: Settings
) -> None:
    from flows.mailing import MailingParams, mailing

    portal = make_portal()
    gone = add_person(portal.engine, company_name="Tonnellerie Meunier", email="gone@example.org")
    stays = add_person(portal.engine, company_name="Fromagerie Gaugry", email="stays@example.org")
    with Session(portal.engine) as session:
        session.add(Campaign(name="Nuits", year=2026, communes=[]))
        session.commit()
    applier = portal.client.app.state.journal_applier  # type: ignore[attr-defined]
    # The background applier is stopped: here the mailing run must apply the journal itself.
    applier.stop()

    answer, under_lock = post_while_locked(
        portal, portal.path(gone.public_id), content=ONE_CLICK, headers={"Content-Type": FORM}
    )
    assert under_lock and answer.status_code == 200
    assert applier.wait(timeout=60)
    assert portal.opt_outs() == []  # only in the journal so far
    assert journal_for(settings).has_pending()

    result = asyncio.run(mailing(MailingParams(dry_run=False, rate_per_minute=None)))

    assert result["run_sent"] == 1
    assert portal.opt_outs() == [(gone.contact_id, Channel.EMAIL, "one-click", NOW)]
    with Session(portal.engine) as session:
        recipients = [m.to_address for m in session.exec(select(Message))]
    assert recipients == [stays.email]
    assert not journal_for(settings).has_pending()


def test_an_entry_applied_twice_changes_nothing(
    engine: sa.Engine, settings: Settings, person: Person
) -> None:
    journal = journal_for(settings)
    for scope, channel in (("channel", Channel.SMS), ("all", Channel.EMAIL)):
        journal.append(
            OptOutRequest.new(
                public_id=person.public_id,
                channel=channel,
                scope=scope,  # type: ignore[arg-type]
                source="one-click",
                at=NOW + timedelta(minutes=len(scope)),
            )  # fmt: skip
        )
    first = apply_pending_opt_outs(engine=engine, journal=journal)
    assert [a.changed for a in first] == [True, True]
    before = _snapshot(engine)
    # The same lines again, as a crash between the commit and the settling would leave them.
    shutil.copy(journal.applied, journal.pending)

    again = apply_pending_opt_outs(engine=engine, journal=journal)

    assert [a.changed for a in again] == [False, False]
    assert _snapshot(engine) == before
    assert len(journal.applied.read_bytes().splitlines()) == 4  # every request kept on record


def test_a_line_cut_short_by_a_crash_is_skipped_not_fatal(
    engine: sa.Engine, settings: Settings, person: Person
) -> None:
    journal = journal_for(settings)
    journal.append(
        OptOutRequest.new(
            public_id=person.public_id,
            channel=Channel.EMAIL,
            scope="channel",
            source="one-click",
            at=NOW,
        )  # fmt: skip
    )
    with journal.pending.open("ab") as handle:
        handle.write(b'{"id": "cut", "public_id": "')  # a write the crash interrupted

    applied = apply_pending_opt_outs(engine=engine, journal=journal)

    assert [(a.request.public_id, a.changed) for a in applied] == [(person.public_id, True)]
    assert not journal.has_pending()


def _snapshot(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], ...]:
    with engine.connect() as connection:
        return tuple(
            [
                tuple(row)
                for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
            ]
            for table in ("opt_out", "stage_change", "company")
        )
