"""The programme's results: how far companies got through the pipeline, against the seed case."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from models.enums import STAGE_LABELS_FR, Stage
from models.stages import PIPELINE
from models.tables import Company, StageChange

# The reference case (shared/seed): 60 companies approached by mailing and phoning,
# 30 meetings with their heads, 15 at the quarterly meetings.
SEED_FUNNEL: dict[Stage, int] = {Stage.CONTACTED: 60, Stage.VISITED: 30, Stage.PARTICIPANT: 15}


@dataclass(frozen=True)
class FunnelStep:
    """One pipeline stage: companies there now, companies that ever reached it, the seed's figure."""

    stage: Stage
    label: str
    now: int
    reached: int
    seed: int | None


def funnel(*, session: Session) -> list[FunnelStep]:
    """The funnel, counting a company as having reached every stage up to the furthest it ever held.

    A company that declined after its visit still counts as visited: the history says so.
    """
    rank = {stage: index for index, stage in enumerate(PIPELINE)}
    furthest: dict[int, int] = {}
    current: dict[Stage, int] = dict.fromkeys(Stage, 0)
    for company_id, stage in session.execute(sa.select(Company.id, Company.stage)):  # type: ignore[call-overload]
        current[Stage(stage)] += 1
        furthest[company_id] = max(0, rank.get(Stage(stage), 0))  # every company was listed once
    history = sa.select(StageChange.company_id, StageChange.to_stage).distinct()  # type: ignore[call-overload]
    for company_id, stage in session.execute(history):
        furthest[company_id] = max(furthest.get(company_id, -1), rank.get(Stage(stage), -1))
    reached = [0] * len(PIPELINE)
    for position in furthest.values():
        for index in range(position + 1):
            reached[index] += 1
    return [
        FunnelStep(
            stage, STAGE_LABELS_FR[stage], current[stage], reached[index], SEED_FUNNEL.get(stage)
        )
        for index, stage in enumerate(PIPELINE)
    ]


def exits(*, session: Session) -> dict[Stage, int]:
    """How many companies stand at each exit stage (declined, unreachable, opted out, closed)."""
    counts = dict.fromkeys((Stage.DECLINED, Stage.UNREACHABLE, Stage.OPTED_OUT, Stage.CLOSED), 0)
    query = sa.select(Company.stage, sa.func.count()).group_by(Company.stage)  # type: ignore[call-overload]
    for stage, count in session.execute(query):
        if Stage(stage) in counts:
            counts[Stage(stage)] = count
    return counts


def referrals(*, session: Session) -> list[tuple[str, str, str]]:
    """Return who brought whom to which meeting: (meeting title, referred company, referring company)."""
    from sqlalchemy.orm import aliased

    from models.tables import Meeting, Referral

    referrer = aliased(Company)
    rows = session.execute(
        sa.select(col(Meeting.title), col(Company.name), col(referrer.name))
        .join(Referral, col(Referral.meeting_id) == col(Meeting.id))
        .join(Company, col(Company.id) == col(Referral.company_id))
        .join(referrer, col(referrer.id) == col(Referral.referrer_company_id))
        .order_by(col(Meeting.starts_at), col(Referral.id))
    ).all()
    return [(str(m), str(c), str(r)) for m, c, r in rows]
