"""Opt-outs in the database: idempotent even under races, per channel, and the whole company."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Channel, Company, Contact, OptOut, Stage, StageChange
from synergie.messaging.optouts import is_opted_out, opt_out, opt_out_company, opted_out_contact_ids
from tests.factories import NOW, make_company, make_contact


def _rows(engine: sa.Engine) -> list[tuple[int, Channel, str, object]]:
    with Session(engine) as session:
        rows = session.exec(select(OptOut).order_by(OptOut.id)).all()  # type: ignore[arg-type]
        return [(row.contact_id, row.channel, row.source, row.at) for row in rows]


def test_opt_out_records_each_channel_with_source_and_time(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        contact = make_contact(session, make_company(session))
        added = opt_out(
            session=session, contact=contact, channels=[Channel.EMAIL, Channel.SMS, Channel.EMAIL],
            source="portal", now=NOW,
        )  # fmt: skip
        session.commit()
    assert added == [Channel.EMAIL, Channel.SMS]
    assert _rows(engine) == [
        (contact.id, Channel.EMAIL, "portal", NOW),
        (contact.id, Channel.SMS, "portal", NOW),
    ]


def test_a_second_opt_out_changes_nothing_and_keeps_the_first_record(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        contact = make_contact(session, make_company(session))
        opt_out(
            session=session, contact=contact, channels=[Channel.EMAIL], source="one-click", now=NOW
        )
        session.commit()
    with Session(engine) as session:
        again = opt_out(
            session=session, contact=contact, channels=[Channel.EMAIL], source="portal",
            now=NOW + timedelta(days=3),
        )  # fmt: skip
        session.commit()
    assert again == []
    assert _rows(engine) == [(contact.id, Channel.EMAIL, "one-click", NOW)]


def test_two_racing_opt_outs_of_the_same_channel_both_succeed(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        contact = make_contact(session, make_company(session))
        session.commit()
    outcome: dict[str, object] = {}

    def second_request() -> None:
        try:
            with Session(engine) as session:
                outcome["added"] = opt_out(
                    session=session, contact=contact, channels=[Channel.EMAIL], source="one-click",
                    now=NOW + timedelta(seconds=1),
                )  # fmt: skip
                session.commit()
        except Exception as exc:  # reported to the test thread below
            outcome["error"] = exc

    with Session(engine) as first:
        assert opt_out(
            session=first, contact=contact, channels=[Channel.EMAIL], source="portal", now=NOW
        ) == [Channel.EMAIL]
        racer = threading.Thread(target=second_request)
        racer.start()
        racer.join(0.5)
        # The second insert waits on the first writer (row lock / SQLite write lock): a true race.
        assert racer.is_alive()
        first.commit()
    racer.join(10)
    assert outcome == {"added": []}
    assert _rows(engine) == [(contact.id, Channel.EMAIL, "portal", NOW)]


def test_is_opted_out_is_per_channel_and_covers_a_company_that_opted_out(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = make_company(session)
        refusing, other = make_contact(session, company), make_contact(session, company)
        opt_out(session=session, contact=refusing, channels=[Channel.SMS], source="portal", now=NOW)
        assert is_opted_out(session=session, contact_id=refusing.id, channel=Channel.SMS)  # type: ignore[arg-type]
        assert not is_opted_out(session=session, contact_id=refusing.id, channel=Channel.EMAIL)  # type: ignore[arg-type]
        assert opted_out_contact_ids(
            session=session, contact_ids=[refusing.id, other.id], channel=Channel.SMS,  # type: ignore[list-item]
        ) == {refusing.id}  # fmt: skip
        company.stage = Stage.OPTED_OUT
        session.add(company)
        session.flush()
        # No message of any kind to anyone at a company that opted out.
        assert is_opted_out(session=session, contact_id=other.id, channel=Channel.EMAIL)  # type: ignore[arg-type]
        assert (
            opted_out_contact_ids(session=session, contact_ids=[], channel=Channel.EMAIL) == set()
        )


def test_opt_out_company_refuses_every_channel_and_moves_the_company(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company = make_company(session, stage=Stage.CONTACTED)
        contact = make_contact(session, company)
        opt_out(
            session=session, contact=contact, channels=[Channel.EMAIL], source="one-click", now=NOW
        )
        result = opt_out_company(session=session, contact=contact, source="portal", now=NOW)
        session.commit()
    assert result.changed
    assert result.channels == [Channel.SMS, Channel.PHONE]
    with Session(engine) as session:
        assert session.get(Company, company.id).stage == Stage.OPTED_OUT  # type: ignore[union-attr]
        history = session.exec(select(StageChange)).all()
    assert [(h.from_stage, h.to_stage, h.actor, h.at) for h in history] == [
        (Stage.CONTACTED, Stage.OPTED_OUT, "portal", NOW)
    ]
    assert contact.public_id in history[0].why
    assert {row[1] for row in _rows(engine)} == set(Channel)


def test_opt_out_company_twice_changes_nothing_the_second_time(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        contact = make_contact(session, make_company(session))
        opt_out_company(session=session, contact=contact, source="portal", now=NOW)
        session.commit()
    with Session(engine) as session:
        contact = session.get(Contact, contact.id)  # type: ignore[assignment]
        again = opt_out_company(
            session=session, contact=contact, source="portal", now=NOW + timedelta(hours=1)
        )
        session.commit()
        assert len(session.exec(select(StageChange)).all()) == 1
    assert not again.changed


def test_a_company_moved_meanwhile_by_someone_else_is_read_again(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company = make_company(session)
        contact = make_contact(session, company)
        session.commit()
    with Session(engine) as stale, Session(engine) as other:
        stale_contact = stale.get(Contact, contact.id)
        stale.get(Company, company.id)  # the stale session now believes "listed"
        moved = other.get(Company, company.id)
        assert moved is not None
        moved.stage = Stage.CONTACTED
        other.add(moved)
        other.commit()
        result = opt_out_company(session=stale, contact=stale_contact, source="portal", now=NOW)  # type: ignore[arg-type]
        assert result.stage_change is not None
        assert result.stage_change.from_stage == Stage.CONTACTED
        stale.commit()


def test_a_closed_company_is_opted_out_too(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company = make_company(session, stage=Stage.CLOSED)
        contact = make_contact(session, company)
        result = opt_out_company(session=session, contact=contact, source="portal", now=NOW)
        session.commit()
    assert result.stage_change is not None and result.channels == list(Channel)
    assert (result.stage_change.from_stage, result.stage_change.to_stage) == (
        Stage.CLOSED,
        Stage.OPTED_OUT,
    )
    with Session(engine) as session:
        assert session.get(Company, company.id).stage == Stage.OPTED_OUT  # type: ignore[union-attr]


def test_a_naive_time_is_refused(engine: sa.Engine) -> None:
    with Session(engine) as session:
        contact = make_contact(session, make_company(session))
        with pytest.raises(ValueError, match="timezone-aware"):
            opt_out(
                session=session, contact=contact, channels=[Channel.EMAIL], source="portal",
                now=NOW.replace(tzinfo=None),
            )  # fmt: skip
