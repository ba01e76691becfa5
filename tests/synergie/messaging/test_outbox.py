"""The outbox: unique keys, atomic claims with leases, and what each delivery answer does."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from channels.base import DeliveryResult, OutgoingEmail
from channels.errors import PermanentDeliveryError, RecipientOptedOutError, TransientDeliveryError
from channels.locmem import MemoryEmailBackend
from models import (
    Campaign,
    Channel,
    Company,
    Contact,
    Message,
    MessageStatus,
    OptOut,
    Stage,
    StageChange,
)
from models.db import StatementPipe, make_engine, write_transaction
from synergie.messaging.outbox import (
    RECORD_SENT,
    claim,
    enqueue,
    message_key,
    new_message_id,
    record_delivery,
    retry_delay,
)
from synergie.messaging.sending import SendPolicy, send_claimed
from tests.factories import NOW, make_company, make_contact

LEASE = timedelta(minutes=5)
BASE = timedelta(seconds=60)


def seed(
    engine: sa.Engine, contacts: int, *, companies: int | None = None
) -> tuple[int, list[dict]]:
    """A campaign with ``contacts`` contacts spread over ``companies`` listed companies, and their rows."""
    with Session(engine) as session:
        campaign = Campaign(name="Test", year=2026)
        session.add(campaign)
        session.flush()
        firms = [make_company(session) for _ in range(companies or contacts)]
        people = [make_contact(session, firms[n % len(firms)]) for n in range(contacts)]
        session.commit()
        rows = [
            {
                "key": message_key(
                    campaign_id=campaign.id,
                    step="s1",
                    recipient=f"contact:{p.id}",
                    channel=Channel.EMAIL,
                ),
                "campaign_id": campaign.id,
                "step": "s1",
                "channel": "email",
                "contact_id": p.id,
                "company_id": p.company_id,
                "to_address": p.email,
                "message_id": new_message_id("example.org"),
            }  # fmt: skip
            for p in people
        ]
        return campaign.id, rows  # type: ignore[return-value]


def claim_some(engine: sa.Engine, campaign_id: int, limit: int, *, now=NOW, who: str = "run-a"):  # type: ignore[no-untyped-def]
    with write_transaction(engine) as connection:
        return claim(connection, campaign_id=campaign_id, step="s1", channel=Channel.EMAIL, limit=limit,
                     now=now, lease=LEASE, claimed_by=who)  # fmt: skip


def statuses(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        return [m.status for m in session.exec(select(Message).order_by(Message.id))]


def test_enqueue_is_idempotent_on_the_key(engine: sa.Engine) -> None:
    campaign_id, rows = seed(engine, 5)
    with engine.begin() as connection:
        assert enqueue(connection, rows, now=NOW) == 5
    # The same sends again, even with fresh Message-IDs: nothing new.
    again = [{**row, "message_id": new_message_id("example.org")} for row in rows]
    with engine.begin() as connection:
        assert enqueue(connection, again, now=NOW) == 0
    assert statuses(engine) == ["queued"] * 5


def test_a_claim_takes_rows_once_with_a_lease_that_expires(engine: sa.Engine) -> None:
    campaign_id, rows = seed(engine, 5)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    first = claim_some(engine, campaign_id, 3)
    assert [m.attempts for m in first] == [1, 1, 1]
    second = claim_some(engine, campaign_id, 10, who="run-b")
    assert {m.id for m in first}.isdisjoint(m.id for m in second) and len(second) == 2
    assert claim_some(engine, campaign_id, 10, now=NOW + LEASE - timedelta(seconds=1)) == []
    # The run that held them died: once the lease is over, another run takes them again.
    again = claim_some(engine, campaign_id, 10, now=NOW + LEASE + timedelta(seconds=1))
    assert sorted(m.id for m in again) == sorted(m.id for m in first + second)
    assert {m.attempts for m in again} == {2}


@pytest.mark.parametrize("workers", [6])
def test_concurrent_claims_never_share_a_row(db_url: str, workers: int) -> None:
    engine = make_engine(db_url)
    campaign_id, rows = seed(engine, 400, companies=40)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    taken: list[list[int]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(index: int) -> None:
        own = make_engine(db_url)  # each worker its own pool, as separate runs would be
        try:
            start.wait()
            while batch := claim_some(own, campaign_id, 7, who=f"run-{index}"):
                taken[index].extend(m.id for m in batch)
                # A real run spends time sending what it claimed; SQLite's busy handler is
                # not fair, so without this one worker could take every row.
                time.sleep(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = [row for own in taken for row in own]
    assert len(every) == 400 and len(set(every)) == 400
    assert sum(1 for own in taken if own) >= 2  # the work really was shared


def test_a_sent_message_moves_its_company_once(engine: sa.Engine) -> None:
    campaign_id, rows = seed(engine, 2, companies=1)  # two contacts of one company
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    claimed = claim_some(engine, campaign_id, 10)
    with write_transaction(engine) as connection:
        for message in claimed:
            status = record_delivery(connection, message, DeliveryResult(message.key, provider_id=message.message_id),
                                     now=NOW, max_attempts=3, retry_base=BASE, actor="flow-run:x")  # fmt: skip
            assert status == MessageStatus.SENT
    with Session(engine) as session:
        company = session.exec(select(Company)).one()
        history = session.exec(select(StageChange)).all()
        sent = session.exec(select(Message)).all()
    assert company.stage == Stage.CONTACTED
    assert [(h.from_stage, h.to_stage, h.actor) for h in history] == [
        (Stage.LISTED, Stage.CONTACTED, "flow-run:x")
    ]
    assert all(
        m.sent_at == NOW and m.provider_id == m.message_id and m.lease_until is None for m in sent
    )


def test_a_batch_records_each_sent_message_completely_in_one_statement_on_postgresql(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a sent message costs one statement outside any transaction block (no BEGIN,
    no COMMIT: one round trip), sent ahead without a thread; on both databases every row,
    company and history line is written."""
    campaign_id, rows = seed(engine, 9, companies=6)  # three companies have two contacts
    stranger = rows[0] | {
        "key": "prepared/no-company",
        "campaign_id": campaign_id,
        "company_id": None,
    }
    with engine.begin() as connection:
        enqueue(
            connection, [*rows, stranger | {"message_id": new_message_id("example.org")}], now=NOW
        )
    seen: list[tuple[str, bool]] = []  # through SQLAlchemy
    driven: list[tuple[str, bool]] = []  # through psycopg's connection
    piped: list[tuple[str, str]] = []  # sent ahead on libpq's connection, and its state then

    def watch(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(
            (statement, bool(getattr(connection.connection.driver_connection, "autocommit", False)))
        )

    def build(_connection: sa.Connection, claimed: list) -> list[OutgoingEmail]:  # type: ignore[type-arg]
        seen.clear()  # from here on: sending and recording only
        return [OutgoingEmail(key=m.key, to=m.to_address, subject="Objet", text="Texte", html="<p>Texte</p>",
                              message_id=m.message_id) for m in claimed]  # fmt: skip

    if engine.dialect.name == "postgresql":
        import psycopg
        from psycopg import pq

        execute = psycopg.Connection.execute

        def drive(self, query, params=None, **options):  # type: ignore[no-untyped-def]
            driven.append((str(query), self.autocommit))
            return execute(self, query, params, **options)

        monkeypatch.setattr(psycopg.Connection, "execute", drive)
        send = StatementPipe.send

        def pipe(self: StatementPipe, params: dict) -> None:  # type: ignore[type-arg]
            # IDLE: no transaction block open before it (INTRANS after a BEGIN), the
            # previous run committed: the statement commits on its own.
            self.wait()
            piped.append(
                (self._compiled.sql, pq.TransactionStatus(self._pgconn.transaction_status).name)
            )
            send(self, params)

        monkeypatch.setattr(StatementPipe, "send", pipe)
    backend = MemoryEmailBackend()
    sa.event.listen(engine, "before_cursor_execute", watch)
    try:
        outcome = send_claimed(
            engine=engine, backend=backend, channel=Channel.EMAIL, campaign_id=campaign_id, step=None,
            limit=20, policy=SendPolicy(lease=LEASE, max_attempts=3, retry_base=BASE, actor="flow-run:y"),
            now=lambda: NOW + timedelta(seconds=1), build=build,
        )  # fmt: skip
    finally:
        sa.event.remove(engine, "before_cursor_execute", watch)

    assert outcome.claimed == 10 and outcome.statuses[MessageStatus.SENT] == 10
    if engine.dialect.name == "postgresql":
        assert seen == [] and driven == [], (seen, driven)
        assert len(piped) == 10 and all(state == "IDLE" for _, state in piped), piped
        assert all(sql.startswith("WITH sent AS") for sql, _ in piped), piped
    with Session(engine) as session:
        sent = session.exec(select(Message)).all()
        history = session.exec(select(StageChange).order_by(StageChange.company_id)).all()
        companies = session.exec(select(Company)).all()
    assert all(m.status == MessageStatus.SENT and m.lease_until is None for m in sent)
    assert all(m.sent_at == NOW + timedelta(seconds=1) and m.provider_id for m in sent)
    assert {c.stage for c in companies} == {Stage.CONTACTED}
    assert [h.company_id for h in history] == sorted(c.id for c in companies)  # once each
    assert all(
        (h.from_stage, h.to_stage, h.actor, h.at)
        == (Stage.LISTED, Stage.CONTACTED, "flow-run:y", NOW + timedelta(seconds=1))
        for h in history
    )
    addresses = {(m.company_id, f"message « s1 » envoyé à {m.to_address}") for m in sent}
    assert all((h.company_id, h.why) in addresses for h in history)


def test_recording_a_sent_message_finds_its_rows_by_primary_key_without_statistics(
    engine: sa.Engine,
) -> None:
    """Just after an import, before any ANALYZE, the planner must not read every listed
    company (or every row being sent) through the stage or status index to update one."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    campaign_id, rows = seed(engine, 300)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    claimed = claim_some(engine, campaign_id, 300)
    message = claimed[150]
    compiled = RECORD_SENT._for(engine.dialect)
    arguments = compiled.arguments({
        "b_id": message.id, "b_now": NOW, "b_provider": "x", "b_company": message.company_id,
        "b_from": "listed", "b_to": "contacted", "b_why": "w", "b_actor": "a",
    })  # fmt: skip
    with engine.connect() as connection:
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql("EXPLAIN " + compiled.sql, arguments)
        )
    assert "using message_pkey on message" in plan and "using company_pkey on company" in plan, plan


def test_a_claim_just_after_an_enqueue_finds_its_rows_by_primary_key(engine: sa.Engine) -> None:
    """Before any ANALYZE, the claim must not compare every ready row with every picked one
    (a nested loop over the CTE took a second per batch of 500 out of 5,000)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    campaign_id, rows = seed(engine, 300)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    statements: list[tuple[str, object]] = []

    def watch(connection, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "FOR UPDATE SKIP LOCKED" in statement:
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", watch)
    try:
        assert len(claim_some(engine, campaign_id, 50)) == 50
    finally:
        sa.event.remove(engine, "before_cursor_execute", watch)
    [(statement, parameters)] = statements
    with engine.connect() as connection:
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)  # type: ignore[arg-type]
        )
    # The picked ids come as one array (InitPlan): no join to compare rows pair by pair.
    assert "InitPlan" in plan and "Nested Loop" not in plan and "Join Filter" not in plan, plan


def test_failures_retry_with_backoff_then_give_up_or_mark_the_address(engine: sa.Engine) -> None:
    campaign_id, rows = seed(engine, 3)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    transient, permanent, stopped = claim_some(engine, campaign_id, 3)
    with write_transaction(engine) as connection:
        record = lambda m, e: record_delivery(connection, m, DeliveryResult(m.key, error=e), now=NOW,  # noqa: E731
                                              max_attempts=2, retry_base=BASE, actor="x")  # fmt: skip
        assert (
            record(transient, TransientDeliveryError("try later", code=451)) == MessageStatus.QUEUED
        )
        assert (
            record(permanent, PermanentDeliveryError("no such user", code=550))
            == MessageStatus.BOUNCED
        )
        assert record(stopped, RecipientOptedOutError("STOP", code=21610)) == MessageStatus.BOUNCED
    with Session(engine) as session:
        retry = session.get(Message, transient.id)
        assert retry is not None and retry.next_attempt_at == NOW + BASE and retry.error_code == 451
        assert session.get(Contact, permanent.contact_id).email_invalid_at == NOW  # type: ignore[union-attr]
        assert [(o.contact_id, o.channel, o.source) for o in session.exec(select(OptOut))] == [
            (stopped.contact_id, Channel.EMAIL, "carrier-stop")
        ]
    # Not due yet; then due, and the second transient failure is the last attempt.
    assert claim_some(engine, campaign_id, 3, now=NOW + BASE / 2) == []
    [again] = claim_some(engine, campaign_id, 3, now=NOW + BASE)
    with write_transaction(engine) as connection:
        final = record_delivery(connection, again, DeliveryResult(again.key, error=TransientDeliveryError("x")),
                                now=NOW, max_attempts=2, retry_base=BASE, actor="x")  # fmt: skip
    assert final == MessageStatus.FAILED
    assert (
        retry_delay(1, BASE) == BASE
        and retry_delay(3, BASE) == 4 * BASE
        and retry_delay(30, BASE) == timedelta(hours=1)
    )


def test_opted_out_contacts_and_departed_companies_are_cancelled_at_claim(
    engine: sa.Engine,
) -> None:
    campaign_id, rows = seed(engine, 3)
    with engine.begin() as connection:
        enqueue(connection, rows, now=NOW)
    with Session(engine) as session:
        contacts = session.exec(select(Contact).order_by(Contact.id)).all()
        ids = [c.id for c in contacts]
        session.add(OptOut(contact_id=ids[0], channel=Channel.EMAIL, at=NOW, source="portal"))
        session.add(OptOut(contact_id=ids[2], channel=Channel.SMS, at=NOW, source="portal"))
        company = session.get(Company, contacts[1].company_id)
        company.stage = Stage.OPTED_OUT  # type: ignore[union-attr]
        session.commit()
    claimed = claim_some(engine, campaign_id, 10)
    assert [m.contact_id for m in claimed] == [ids[2]]  # an SMS opt-out does not stop e-mail
    assert statuses(engine) == ["cancelled", "cancelled", "sending"]
