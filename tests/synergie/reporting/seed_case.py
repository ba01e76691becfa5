"""The reference case (shared/seed) as a database: 60 approached, 30 visited, 15 at the meetings, two synergies."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from models import Activity, Stage, SynergyStatus, TimeEntry
from synergie.synergies.lifecycle import PartySpec, create_synergy, move_synergy
from tests.factories import NOW, make_company


def build_seed_territory(session: Session) -> dict[str, int]:
    """60 companies contacted; 30 of them visited; 15 of those at the meetings (stage participant:
    the meetings' tables live on another branch). The cardboard synergy between two companies
    removes 3 trips a month of 360 km and is agreed; the shredded paper one with the authority
    is under study. The time ledger holds the seed's own budget."""
    companies = (
        [make_company(session, stage=Stage.CONTACTED) for _ in range(20)]
        + [make_company(session, stage=Stage.DECLINED) for _ in range(5)]  # declined on the phone
        + [make_company(session, stage=Stage.CALLED) for _ in range(5)]
        + [make_company(session, stage=Stage.VISITED) for _ in range(10)]
        + [make_company(session, stage=Stage.FLOWS_COLLECTED) for _ in range(5)]
        + [make_company(session, stage=Stage.PARTICIPANT) for _ in range(15)]
    )
    # The declined ones were contacted first: their history says so.
    from models import StageChange

    for company in companies[20:25]:
        session.add(StageChange(company_id=company.id, from_stage=Stage.LISTED,  # type: ignore[arg-type]
                                to_stage=Stage.CONTACTED, at=NOW, why="mailing", actor="test"))  # fmt: skip
    cardboard_from, cardboard_to, paper = companies[45], companies[46], companies[47]
    cardboard = create_synergy(
        session=session, title="Chutes de carton réutilisées pour l'emballage", actor="staff",
        now=NOW, parties=[PartySpec(cardboard_from.id, "giver"), PartySpec(cardboard_to.id, "taker")],
        trips_per_month=3, km_per_trip=360, tonnes_per_year=24,
        vehicle="articulated-40t-long-distance",
    )  # fmt: skip
    for n, status in enumerate((SynergyStatus.STUDY, SynergyStatus.AGREED), start=1):
        move_synergy(session=session, synergy_id=cardboard.id, target=status, why="réunion",  # type: ignore[arg-type]
                     actor="staff", now=NOW + timedelta(days=n))  # fmt: skip
    shredded = create_synergy(
        session=session,
        title="Papier broyé pour la collectivité",
        actor="staff",
        now=NOW,
        parties=[PartySpec(paper.id, "giver"), PartySpec(None, "taker")],
    )
    move_synergy(session=session, synergy_id=shredded.id, target=SynergyStatus.STUDY,  # type: ignore[arg-type]
                 why="essai en cours", actor="staff", now=NOW)  # fmt: skip
    # 5 h of listing, 30 visits of 2 h (1 h on site, 1 h of preparation), 15 h on the flows.
    entries = [(Activity.LISTING, 5.0)] + [(Activity.VISIT, 2.0)] * 30
    entries += [(Activity.FLOWS_COLLECTION, 15.0)]
    for activity, hours in entries:
        session.add(TimeEntry(activity=activity, hours=hours, day=date(2016, 3, 1), actor="test"))
    session.flush()
    return {"cardboard": cardboard.id, "shredded": shredded.id}  # type: ignore[dict-item]
