"""The synergy life cycle in the database: parties, flows, status moves and their history."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import (
    Company,
    FlowOrigin,
    MaterialFlow,
    Synergy,
    SynergyFlow,
    SynergyParty,
    SynergyStatus,
    SynergyStatusChange,
)
from synergie.inventory.rows import validate_flow
from synergie.inventory.store import add_flows, replace_portal_flows
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

CARDBOARD_OUT = {"direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
                 "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
                 "trips_per_month": "3", "km_per_trip": "360"}  # fmt: skip
CARDBOARD_IN = {"direction": "entrant", "description": "carton de calage", "category": "papier-carton",
                "quantity": "1500", "unit": "kg", "frequency": "mois", "outlet": "fournisseur",
                "trips_per_month": "2", "km_per_trip": "80"}  # fmt: skip


def inventory(session: Session, company: Company, *answers: dict[str, str]) -> list[int]:
    """Store the company's flows as staff would; return their material_flow ids."""
    rows = [validate_flow(values) for values in answers]
    flows = add_flows(session=session, company=company, rows=rows, origin=FlowOrigin.STAFF,
                      actor="staff", now=NOW)  # fmt: skip
    return [int(f.id or 0) for f in flows]


def test_a_synergy_moves_idea_to_running_with_who_why_when(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a = make_company(session, name="Cartonnerie")
        b = make_company(session, name="Emballeur")
        (give,) = inventory(session, a, CARDBOARD_OUT)
        (take,) = inventory(session, b, CARDBOARD_IN)
        synergy = create_synergy(
            session=session, title="Chutes de carton", actor="staff:anne", now=NOW,
            parties=[PartySpec(a.id, "giver"), PartySpec(b.id, "taker")],
            flow_ids=[take, give, take], trips_per_month=3, km_per_trip=360,
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
        assert rows[0].flow_ids == (give, take)
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


def test_trips_km_and_tonnes_are_prefilled_from_the_linked_flows(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a, b = make_company(session, name="Cartonnerie"), make_company(session, name="Emballeur")
        (give,) = inventory(session, a, CARDBOARD_OUT)
        (take,) = inventory(session, b, CARDBOARD_IN)
        synergy = create_synergy(
            session=session, title="Carton", actor="staff", now=NOW, flow_ids=[give, take],
            parties=[PartySpec(a.id, "giver"), PartySpec(b.id, "taker")],
        )  # fmt: skip
        # The cardboard's trips to its collector today (not the supplier's deliveries);
        # 1.5 t of the 2 t taken each month.
        assert (synergy.trips_per_month, synergy.km_per_trip, synergy.tonnes_per_year) == (
            3,
            360,
            18,
        )
        edited = create_synergy(
            session=session, title="Carton bis", actor="staff", now=NOW, flow_ids=[take],
            parties=[PartySpec(a.id, "giver"), PartySpec(b.id, "taker")], km_per_trip=40,
        )  # fmt: skip
        # Only the incoming flow linked: its deliveries are what goes; staff's km wins.
        assert (edited.trips_per_month, edited.km_per_trip, edited.tonnes_per_year) == (2, 40, 18)
        bare = create_synergy(
            session=session, title="Sans flux", actor="staff", now=NOW,
            parties=[PartySpec(a.id, "giver"), PartySpec(None, "taker")],
        )  # fmt: skip
        assert (bare.trips_per_month, bare.km_per_trip, bare.tonnes_per_year) == (0, 0, 0)


def test_a_synergy_names_real_flows_of_its_parties(engine: sa.Engine) -> None:
    with Session(engine) as session:
        a, b = make_company(session, name="Cartonnerie"), make_company(session, name="Emballeur")
        other = make_company(session, name="Ailleurs")
        (give,) = inventory(session, a, CARDBOARD_OUT)
        (elsewhere,) = inventory(session, other, CARDBOARD_IN)
        parties = [PartySpec(a.id, "giver"), PartySpec(b.id, "taker")]
        with pytest.raises(SynergyError, match=f"aucun flux n° {give + 100} dans l'inventaire"):
            create_synergy(session=session, title="x", actor="s", now=NOW, parties=parties,
                           flow_ids=[give, give + 100])  # fmt: skip
        with pytest.raises(SynergyError, match=f"flux n° {elsewhere} n'appartient à aucune"):
            create_synergy(session=session, title="x", actor="s", now=NOW, parties=parties,
                           flow_ids=[give, elsewhere])  # fmt: skip
        assert session.exec(select(Synergy)).all() == []
        # The database refuses an unknown flow too (the key), whatever code writes the row.
        synergy = create_synergy(session=session, title="x", actor="s", now=NOW, parties=parties)
        session.add(SynergyFlow(synergy_id=synergy.id, flow_id=give + 100))  # type: ignore[arg-type]
        with pytest.raises(sa.exc.IntegrityError):
            session.flush()


def test_a_flow_replaced_in_the_portal_leaves_the_synergy_without_its_link(
    engine: sa.Engine,
) -> None:
    with Session(engine) as session:
        a, b = make_company(session, name="Cartonnerie"), make_company(session, name="Emballeur")
        replace_portal_flows(session=session, company=a, contact_id=None,
                             rows=[validate_flow(CARDBOARD_OUT)], now=NOW)  # fmt: skip
        (give,) = [row.id for row in session.exec(select(MaterialFlow)).all()]
        synergy = create_synergy(
            session=session, title="Carton", actor="s", now=NOW, flow_ids=[give],  # type: ignore[list-item]
            parties=[PartySpec(a.id, "giver"), PartySpec(b.id, "taker")],
        )  # fmt: skip
        replace_portal_flows(session=session, company=a, contact_id=None,
                             rows=[validate_flow(CARDBOARD_OUT)], now=NOW)  # fmt: skip
        session.commit()
        assert session.exec(select(SynergyFlow)).all() == []
        session.refresh(synergy)
        assert (synergy.trips_per_month, synergy.km_per_trip) == (3, 360)
