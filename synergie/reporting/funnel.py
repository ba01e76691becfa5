"""The programme's results: how far companies got through the pipeline, against the seed case."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.companies import CORRECTION, standing_moves
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
    for company_id, stage in _stages_held(session):
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


def _stages_held(session: Session) -> Iterator[tuple[int, Stage]]:
    """(company, stage) for every stage a company's history moved it to, less moves corrected away."""
    corrected = sa.select(StageChange.company_id).where(  # type: ignore[call-overload]
        col(StageChange.why).startswith(CORRECTION)
    )
    plain = (
        sa.select(StageChange.company_id, StageChange.to_stage)  # type: ignore[call-overload]
        .where(col(StageChange.company_id).not_in(corrected))
        .distinct()
    )
    for company_id, stage in session.execute(plain):
        yield company_id, Stage(stage)
    # The few companies with a correction: their history replayed, taken-back moves dropped.
    changes = session.exec(
        select(StageChange)
        .where(col(StageChange.company_id).in_(corrected))
        .order_by(col(StageChange.company_id), col(StageChange.id))
    ).all()
    for company_id, history in groupby(changes, key=lambda c: c.company_id):
        for move in standing_moves(list(history)):
            yield company_id, Stage(move.to_stage)


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
