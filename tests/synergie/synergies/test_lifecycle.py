"""The synergy life cycle in the database: parties, flows, status moves and their history."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Synergy, SynergyParty, SynergyStatus, SynergyStatusChange
from synergie.synergies.lifecycle import (
    PartySpec,
    SynergyError,
    allowed_statuses,
    create_synergy,
    history,
    list_synergies,
    move_synergy,
)
from tests.factories import NOW, make_company


def test_a_synergy_moves_idea_to_running_with_who_why_when(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a = make_company(session, name="Cartonnerie")
        b = make_company(session, name="Emballeur")
        synergy = create_synergy(
            session=session, title="Chutes de carton", actor="staff:anne", now=NOW,
            parties=[PartySpec(a.id, "giver"), PartySpec(b.id, "taker")], flow_ids=[7, 8, 7],
            trips_per_month=3, km_per_trip=360,
        )  # fmt: skip
        for n, status in enumerate(("study", "agreed", "running"), start=1):
            move_synergy(
                session=session, synergy_id=synergy.id, target=SynergyStatus(status),  # type: ignore[arg-type]
                why=f"étape {n}", actor="staff:anne", now=NOW + timedelta(days=n),
            )  # fmt: skip
        session.commit()
    with Session(engine) as session:
        rows = list_synergies(session=session)
        assert len(rows) == 1
        assert rows[0].parties == ("Cartonnerie", "Emballeur")
        assert rows[0].flow_ids == (7, 8)
        assert rows[0].synergy.status == SynergyStatus.RUNNING
        steps = history(session=session, synergy_id=rows[0].synergy.id)  # type: ignore[arg-type]
        assert [(h.from_status, h.to_status, h.why) for h in steps] == [
            (None, SynergyStatus.IDEA, "proposée"),
            (SynergyStatus.IDEA, SynergyStatus.STUDY, "étape 1"),
            (SynergyStatus.STUDY, SynergyStatus.AGREED, "étape 2"),
            (SynergyStatus.AGREED, SynergyStatus.RUNNING, "étape 3"),
        ]
        assert steps[-1].at == NOW + timedelta(days=3)


def test_the_authority_can_be_a_party(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a = make_company(session, name="Imprimerie")
        create_synergy(
            session=session, title="Papier broyé", actor="staff", now=NOW,
            parties=[PartySpec(a.id, "giver"), PartySpec(None, "taker")],
        )  # fmt: skip
        session.commit()
        assert list_synergies(session=session)[0].parties == ("Imprimerie", "la collectivité")
        party = session.exec(select(SynergyParty).where(SynergyParty.company_id == None)).one()  # noqa: E711
        assert party.is_authority


def test_a_skipped_step_is_refused_in_french_and_changes_nothing(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a, b = make_company(session), make_company(session)
        synergy = create_synergy(
            session=session, title="x", actor="staff", now=NOW,
            parties=[PartySpec(a.id), PartySpec(b.id)],
        )  # fmt: skip
        session.commit()
        with pytest.raises(SynergyError, match="un à un"):
            move_synergy(
                session=session, synergy_id=synergy.id, target=SynergyStatus.RUNNING,  # type: ignore[arg-type]
                why="trop vite", actor="staff", now=NOW,
            )  # fmt: skip
        with pytest.raises(SynergyError, match="pourquoi"):
            move_synergy(
                session=session, synergy_id=synergy.id, target=SynergyStatus.STUDY,  # type: ignore[arg-type]
                why=" ", actor="staff", now=NOW,
            )  # fmt: skip
        with pytest.raises(SynergyError, match="aucune synergie"):
            move_synergy(
                session=session, synergy_id=999, target=SynergyStatus.STUDY, why="x",
                actor="staff", now=NOW,
            )  # fmt: skip
        session.rollback()
        assert session.exec(select(Synergy)).one().status == SynergyStatus.IDEA
        assert len(session.exec(select(SynergyStatusChange)).all()) == 1


def test_parties_are_checked(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a = make_company(session)
        with pytest.raises(SynergyError, match="au moins deux"):
            create_synergy(
                session=session, title="x", actor="s", now=NOW, parties=[PartySpec(a.id)]
            )
        with pytest.raises(SynergyError, match="deux fois"):
            create_synergy(
                session=session, title="x", actor="s", now=NOW,
                parties=[PartySpec(a.id), PartySpec(a.id)],
            )  # fmt: skip


def test_any_open_status_may_stop_and_a_stopped_one_reopens() -> None:
    for status in ("idea", "study", "agreed", "running"):
        assert SynergyStatus.STOPPED in allowed_statuses(SynergyStatus(status))
    assert allowed_statuses(SynergyStatus.STOPPED) == {SynergyStatus.IDEA, SynergyStatus.STUDY}
    assert SynergyStatus.AGREED not in allowed_statuses(SynergyStatus.IDEA)
