"""The synergy life cycle: create one with its parties and flows, move it along, list them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.enums import SYNERGY_STATUS_LABELS_FR, SynergyKind, SynergyStatus
from models.inventory import Direction, MaterialFlow
from models.tables import Company, Synergy, SynergyFlow, SynergyParty, SynergyStatusChange

ORDER = (
    SynergyStatus.IDEA,
    SynergyStatus.STUDY,
    SynergyStatus.AGREED,
    SynergyStatus.RUNNING,
)
# Only agreed and running synergies remove trucks from the road: the reports count those.
COUNTED = frozenset({SynergyStatus.AGREED, SynergyStatus.RUNNING})


class SynergyError(ValueError):
    """A synergy request staff can fix; the message is in French."""


def allowed_statuses(current: SynergyStatus) -> frozenset[SynergyStatus]:
    """Where a synergy may go from ``current``: one step on, back to study, stopped, or reopened."""
    if current == SynergyStatus.STOPPED:
        return frozenset({SynergyStatus.IDEA, SynergyStatus.STUDY})
    position = ORDER.index(current)
    targets = {SynergyStatus.STOPPED}
    if position + 1 < len(ORDER):
        targets.add(ORDER[position + 1])
    if current in (SynergyStatus.AGREED, SynergyStatus.STUDY):
        targets.add(ORDER[position - 1])  # the study reopens, or goes back to an idea
    return frozenset(targets)


def check_move(current: SynergyStatus, target: SynergyStatus) -> SynergyStatus:
    """Return ``target`` if a synergy at ``current`` may move there, else raise SynergyError saying why."""
    if target == current:
        raise SynergyError(f"la synergie est déjà « {SYNERGY_STATUS_LABELS_FR[current]} »")
    if target not in allowed_statuses(current):
        allowed = ", ".join(
            f"{s.value} ({SYNERGY_STATUS_LABELS_FR[s]})"
            for s in ORDER + (SynergyStatus.STOPPED,)
            if s in allowed_statuses(current)
        )
        raise SynergyError(
            f"passage de « {SYNERGY_STATUS_LABELS_FR[current]} » à "
            f"« {SYNERGY_STATUS_LABELS_FR[target]} » refusé : les statuts se franchissent un à un "
            f"(possibles : {allowed})"
        )
    return target


@dataclass(frozen=True)
class PartySpec:
    """A party to name: a company's id, or the authority (``company_id`` None)."""

    company_id: int | None
    role: str = "partner"


@dataclass(frozen=True)
class Prefill:
    """What the linked flows say a synergy removes: trips a month, km per trip, tonnes a year."""

    trips_per_month: float | None
    km_per_trip: float | None
    tonnes_per_year: float | None


def prefill_from_flows(flows: Sequence[MaterialFlow]) -> Prefill:
    """The trips and km of the flows' current outlets, and the tonnes a year the exchange moves.

    The trips removed are those that carry the outgoing flows to their outlet today (summed,
    km weighted by trips); an incoming flow's delivery trips count only when no outgoing flow
    says how it leaves. Tonnes: the smaller of what is given and what is taken (in t or kg), × 12.
    """
    from synergie.synergies.sources import tonnes_per_month

    def trips_of(direction: Direction) -> list[MaterialFlow]:
        return [f for f in flows if f.direction == direction and f.trips_per_month]

    carried = trips_of(Direction.OUTGOING) or trips_of(Direction.INCOMING)
    trips = sum(f.trips_per_month or 0 for f in carried)
    km = (
        sum((f.trips_per_month or 0) * (f.km_per_trip or 0) for f in carried) / trips
        if trips
        else 0
    )
    sides = []
    for direction in (Direction.OUTGOING, Direction.INCOMING):
        weights = [
            tonnes_per_month(f.monthly_quantity, f.unit) for f in flows if f.direction == direction
        ]
        if weights and all(w is not None for w in weights):
            sides.append(sum(w or 0 for w in weights))
    return Prefill(
        round(trips, 2) if carried else None,
        round(km, 1) if carried and any(f.km_per_trip for f in carried) else None,
        round(12 * min(sides), 2) if sides else None,
    )


def linked_flows(
    *, session: Session, flow_ids: Sequence[int], company_ids: Sequence[int]
) -> list[MaterialFlow]:
    """The inventory's flows by id, each checked to exist and to belong to one of the parties."""
    wanted = list(dict.fromkeys(flow_ids))
    if not wanted:
        return []
    found = {
        f.id: f
        for f in session.exec(select(MaterialFlow).where(col(MaterialFlow.id).in_(wanted))).all()
    }
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise SynergyError(
            f"aucun flux n° {', '.join(missing)} dans l'inventaire "
            "(synergie inventory list ou synergie synergies match donnent les numéros)"
        )
    strangers = [f for f in found.values() if f.company_id not in company_ids]
    if strangers:
        raise SynergyError(
            "le flux n° "
            + ", ".join(str(f.id) for f in strangers)
            + " n'appartient à aucune des entreprises de la synergie"
        )
    return [found[i] for i in wanted]


def create_synergy(
    *,
    session: Session,
    title: str,
    parties: Sequence[PartySpec],
    actor: str,
    now: datetime,
    kind: SynergyKind = SynergyKind.SUBSTITUTION,
    flow_ids: Sequence[int] = (),
    trips_per_month: float | None = None,
    km_per_trip: float | None = None,
    tonnes_per_year: float | None = None,
    vehicle: str = "articulated-40t-long-distance",
    why: str = "proposée",
) -> Synergy:
    """Create a synergy at ``idea`` with its parties, flows and first history row.

    Trips, km and tonnes left out (None) are prefilled from the linked flows
    (``prefill_from_flows``), else 0; staff edit them later.
    """
    companies = [p.company_id for p in parties if p.company_id is not None]
    if len(parties) < 2:
        raise SynergyError("une synergie lie au moins deux parties (entreprises ou collectivité)")
    if len(set(companies)) != len(companies):
        raise SynergyError("une même entreprise est nommée deux fois")
    if sum(p.company_id is None for p in parties) > 1:
        raise SynergyError("la collectivité ne peut être nommée qu'une fois")
    for value, what in ((trips_per_month, "trajets par mois"), (km_per_trip, "km par trajet")):
        if value is not None and value < 0:
            raise SynergyError(f"{what} : un nombre positif est attendu")
    flows = linked_flows(session=session, flow_ids=flow_ids, company_ids=companies)
    prefill = prefill_from_flows(flows)
    trips_per_month = _first(trips_per_month, prefill.trips_per_month)
    km_per_trip = _first(km_per_trip, prefill.km_per_trip)
    tonnes_per_year = _first(tonnes_per_year, prefill.tonnes_per_year)
    synergy = Synergy(
        title=title, kind=kind, trips_per_month=trips_per_month, km_per_trip=km_per_trip,
        tonnes_per_year=tonnes_per_year, vehicle=vehicle, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(synergy)
    session.flush()
    assert synergy.id is not None
    for party in parties:
        session.add(
            SynergyParty(
                synergy_id=synergy.id, company_id=party.company_id,
                is_authority=party.company_id is None, role=party.role,
            )
        )  # fmt: skip
    for flow_id in dict.fromkeys(flow_ids):
        session.add(SynergyFlow(synergy_id=synergy.id, flow_id=flow_id))
    session.add(
        SynergyStatusChange(
            synergy_id=synergy.id, from_status=None, to_status=SynergyStatus.IDEA,
            at=now, why=why, actor=actor,
        )
    )  # fmt: skip
    session.flush()
    return synergy


def _first(given: float | None, prefilled: float | None) -> float:
    return given if given is not None else prefilled if prefilled is not None else 0.0


def get_synergy(*, session: Session, synergy_id: int) -> Synergy:
    """Return the synergy, or raise SynergyError in French."""
    synergy = session.get(Synergy, synergy_id)
    if synergy is None:
        raise SynergyError(f"aucune synergie n° {synergy_id}")
    return synergy


def move_synergy(
    *,
    session: Session,
    synergy_id: int,
    target: SynergyStatus,
    why: str,
    actor: str,
    now: datetime,
) -> SynergyStatusChange:
    """Move a synergy to ``target`` (checked) and record who, why and when; conditional on its status."""
    if not why.strip():
        raise SynergyError("dites pourquoi (--why) : l'historique le garde")
    synergy = get_synergy(session=session, synergy_id=synergy_id)
    current = SynergyStatus(synergy.status)
    check_move(current, target)
    result = session.execute(
        sa.update(Synergy)
        .where(col(Synergy.id) == synergy_id, col(Synergy.status) == current)
        .values(status=target, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise SynergyError("la synergie a changé de statut entre-temps : relisez-la et recommencez")
    change = SynergyStatusChange(
        synergy_id=synergy_id, from_status=current, to_status=target, at=now, why=why, actor=actor
    )
    session.add(change)
    session.flush()
    session.refresh(synergy)
    return change


@dataclass(frozen=True)
class SynergyRow:
    """A synergy as listed: its figures and its parties' names."""

    synergy: Synergy
    parties: tuple[str, ...]
    flow_ids: tuple[int, ...]


AUTHORITY_LABEL = "la collectivité"


def list_synergies(*, session: Session, status: SynergyStatus | None = None) -> list[SynergyRow]:
    """Every synergy (or those at ``status``) with its parties' names, newest first."""
    query = select(Synergy).order_by(col(Synergy.id).desc())
    if status is not None:
        query = query.where(Synergy.status == status)
    synergies = session.exec(query).all()
    ids = [s.id for s in synergies]
    names: dict[int, list[str]] = {i: [] for i in ids if i is not None}
    flows: dict[int, list[int]] = {i: [] for i in ids if i is not None}
    if ids:
        parties = session.execute(
            sa.select(SynergyParty.synergy_id, SynergyParty.is_authority, Company.name)  # type: ignore[call-overload]
            .outerjoin(Company, col(Company.id) == col(SynergyParty.company_id))
            .where(col(SynergyParty.synergy_id).in_(ids))
            .order_by(SynergyParty.id)
        )
        for synergy_id, is_authority, name in parties:
            names[synergy_id].append(AUTHORITY_LABEL if is_authority else name)
        linked = session.execute(
            sa.select(SynergyFlow.synergy_id, SynergyFlow.flow_id)  # type: ignore[call-overload]
            .where(col(SynergyFlow.synergy_id).in_(ids))
            .order_by(SynergyFlow.flow_id)
        )
        for synergy_id, flow_id in linked:
            flows[synergy_id].append(flow_id)
    return [
        SynergyRow(s, tuple(names[s.id]), tuple(flows[s.id])) for s in synergies if s.id is not None
    ]


def history(*, session: Session, synergy_id: int) -> list[SynergyStatusChange]:
    """The synergy's status changes, oldest first."""
    query = (
        select(SynergyStatusChange)
        .where(SynergyStatusChange.synergy_id == synergy_id)
        .order_by(col(SynergyStatusChange.id))
    )
    return list(session.exec(query).all())
