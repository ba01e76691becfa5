"""Companies in the database: moves through the stage machine, history rows, constraints."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Company, Stage, StageChange, StageTransitionError
from models.companies import (
    CompanyNotFound,
    StageConflict,
    count_by_stage,
    get_company_by_siret,
    list_companies,
    move_company,
)
from models.db import require_schema
from tests.factories import NOW, make_company


def test_a_move_updates_the_stage_and_stores_who_why_when(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = make_company(session)
        change = move_company(
            session=session, company=company, target=Stage.CONTACTED, why="premier courrier",
            actor="flow-run:abc", now=NOW,
        )  # fmt: skip
        session.commit()
        assert change.from_stage == Stage.LISTED and change.to_stage == Stage.CONTACTED
    with Session(engine) as session:
        stored = session.exec(select(Company)).one()
        history = session.exec(select(StageChange)).all()
    assert stored.stage == Stage.CONTACTED
    assert [(h.from_stage, h.to_stage, h.why, h.actor, h.at) for h in history] == [
        (Stage.LISTED, Stage.CONTACTED, "premier courrier", "flow-run:abc", NOW)
    ]


def test_a_forbidden_move_changes_nothing(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = make_company(session)
        session.commit()
        with pytest.raises(StageTransitionError):
            move_company(
                session=session,
                company=company,
                target=Stage.VISITED,
                why="x",
                actor="cli",
                now=NOW,
            )
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(Company.stage)).one() == Stage.LISTED
        assert session.exec(select(StageChange)).all() == []


def test_a_stale_read_is_detected_not_overwritten(engine: sa.Engine) -> None:
    with Session(engine) as first, Session(engine) as second:
        company = make_company(first)
        first.commit()
        stale = second.get(Company, company.id)
        assert stale is not None
        move_company(
            session=first, company=company, target=Stage.CONTACTED, why="a", actor="a", now=NOW
        )
        first.commit()
        with pytest.raises(StageConflict):
            move_company(
                session=second, company=stale, target=Stage.OPTED_OUT, why="b", actor="b", now=NOW
            )


def test_the_database_refuses_an_unknown_stage(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO company (name, name_key, source, stage, created_at, updated_at) "
                "VALUES ('x', 'x', 'listing', 'bogus', :now, :now)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )


def test_siret_is_unique_when_present_and_name_postcode_when_absent(engine: sa.Engine) -> None:
    with Session(engine) as session:
        make_company(session, siret=None, name="A", name_key="a", postcode="21700")
        make_company(session, siret=None, name="A", name_key="a", postcode="21220")
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            make_company(session, siret=None, name="A", name_key="a", postcode="21700")
        session.rollback()
        first = make_company(session)
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            make_company(session, siret=first.siret)


def test_queries_find_filter_and_count(engine: sa.Engine) -> None:
    with Session(engine) as session:
        wine = make_company(session, name="Domaine Fictif", naf_code="11.02B", commune_code="21295")
        make_company(session, name="Cartons Fictifs", naf_code="17.21A", stage=Stage.CONTACTED)
        session.commit()
        assert (
            get_company_by_siret(session=session, siret=wine.siret or "").name == "Domaine Fictif"
        )
        with pytest.raises(CompanyNotFound, match="aucune entreprise"):
            get_company_by_siret(session=session, siret="00000000000000")
        assert [c.name for c in list_companies(session=session, naf_prefix="11")] == [
            "Domaine Fictif"
        ]
        assert [c.name for c in list_companies(session=session, commune_code="21295")] == [
            "Domaine Fictif"
        ]
        assert [c.name for c in list_companies(session=session, search="carton")] == [
            "Cartons Fictifs"
        ]
        assert [c.name for c in list_companies(session=session, stage=Stage.CONTACTED)] == [
            "Cartons Fictifs"
        ]
        counts = count_by_stage(session=session)
    assert counts[Stage.LISTED] == 1 and counts[Stage.CONTACTED] == 1 and counts[Stage.MEMBER] == 0


def test_timestamps_come_back_aware_in_utc(engine: sa.Engine) -> None:
    with Session(engine) as session:
        company = make_company(session)
        move_company(
            session=session, company=company, target=Stage.CLOSED, why="x", actor="x", now=NOW
        )
        session.commit()
    with Session(engine) as session:
        change = session.exec(select(StageChange)).one()
    assert change.at == NOW and change.at.tzinfo is not None


def test_require_schema_explains_what_to_run(tmp_path) -> None:
    from models.db import DatabaseError, make_engine

    bare = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseError, match="synergie init"):
        require_schema(bare)
