"""The inventory as database verbs: add flows, replace a company's portal answer, list, accept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.companies import move_company
from models.enums import Stage
from models.inventory import FlowOrigin, FlowSubmission, MaterialFlow
from models.tables import Company, StageChange
from synergie.inventory.rows import FlowRow

__all__ = [
    "InventoryError",
    "accept_inventory",
    "add_flows",
    "company_flows",
    "list_flows",
    "replace_portal_flows",
]


class InventoryError(Exception):
    """An inventory operation a person asked for cannot be done; the message says why, in French."""


def add_flows(
    *,
    session: Session,
    company: Company,
    rows: Sequence[FlowRow],
    origin: FlowOrigin,
    actor: str,
    now: datetime,
) -> list[MaterialFlow]:
    """Store checked flows for ``company`` (in the caller's transaction); return the new rows."""
    flows = [
        MaterialFlow(
            company_id=company.id,  # type: ignore[arg-type]
            origin=origin,
            created_at=now,
            created_by=actor,
            **row.columns(),
        )
        for row in rows
    ]
    session.add_all(flows)
    session.flush()
    return flows


def replace_portal_flows(
    *,
    session: Session,
    company: Company,
    contact_id: int | None,
    rows: Sequence[FlowRow],
    now: datetime,
) -> FlowSubmission:
    """Replace what the company submitted through the portal by ``rows``, and record the submission.

    Runs in the caller's transaction: the old answer is gone and the new one stored together, or
    neither (staff-entered and imported rows are left alone).
    """
    session.execute(
        sa.delete(MaterialFlow).where(
            col(MaterialFlow.company_id) == company.id,
            col(MaterialFlow.origin) == FlowOrigin.PORTAL,
        )
    )
    add_flows(
        session=session, company=company, rows=rows, origin=FlowOrigin.PORTAL,
        actor=f"contact:{contact_id}" if contact_id else "portal", now=now,
    )  # fmt: skip
    submission = FlowSubmission(
        company_id=company.id,  # type: ignore[arg-type]
        contact_id=contact_id,
        rows=len(rows),
        submitted_at=now,
    )
    session.add(submission)
    session.flush()
    return submission


def company_flows(
    *, session: Session, company_id: int, origin: FlowOrigin | None = None
) -> list[MaterialFlow]:
    """The company's flows (of one origin, or all), in the order they were written."""
    query = select(MaterialFlow).where(MaterialFlow.company_id == company_id)
    if origin is not None:
        query = query.where(MaterialFlow.origin == origin)
    return list(session.exec(query.order_by(col(MaterialFlow.id))).all())


@dataclass(frozen=True, slots=True)
class ListedFlow:
    """A flow with its company's name and SIRET, for lists."""

    flow: MaterialFlow
    company: str
    siret: str | None


def list_flows(*, session: Session, company_id: int | None = None) -> list[ListedFlow]:
    """Every flow (or one company's), by company then order of entry."""
    query = select(MaterialFlow, Company).join(
        Company, col(Company.id) == col(MaterialFlow.company_id)
    )
    if company_id is not None:
        query = query.where(MaterialFlow.company_id == company_id)
    rows = session.exec(query.order_by(col(Company.name), col(MaterialFlow.id))).all()
    return [ListedFlow(flow, company.name, company.siret) for flow, company in rows]


def accept_inventory(
    *, session: Session, company: Company, actor: str, now: datetime
) -> StageChange:
    """Move a visited company whose flows staff checked to ``flows_collected``; refuse an empty inventory."""
    count = session.exec(
        select(sa.func.count())
        .select_from(MaterialFlow)
        .where(MaterialFlow.company_id == company.id)
    ).one()
    if not count:
        raise InventoryError(
            f"{company.name} n'a encore aucun flux : rien à valider (synergie inventory add, "
            "ou le questionnaire envoyé après la visite)."
        )
    if company.stage != Stage.VISITED:
        raise InventoryError(
            f"{company.name} est à l'étape « {company.stage} » : seul l'inventaire d'une "
            "entreprise visitée se valide."
        )
    return move_company(
        session=session, company=company, target=Stage.FLOWS_COLLECTED,
        why=f"inventaire des flux validé ({count} flux)", actor=actor, now=now,
    )  # fmt: skip
