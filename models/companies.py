"""Database verbs on companies: find, list, count by stage, and move through the stage machine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from models.enums import Stage
from models.stages import transition
from models.tables import Company, StageChange


class CompanyNotFound(LookupError):
    """No company answers to the given identifier."""


class StageConflict(RuntimeError):
    """The company's stage changed under us (another run moved it); read again and retry."""


def get_company_by_siret(*, session: Session, siret: str) -> Company:
    """Return the company with this SIRET, or raise CompanyNotFound."""
    company = session.exec(select(Company).where(Company.siret == siret)).first()
    if company is None:
        raise CompanyNotFound(f"aucune entreprise avec le SIRET {siret}")
    return company


def list_companies(
    *,
    session: Session,
    stage: Stage | None = None,
    commune_code: str | None = None,
    naf_prefix: str | None = None,
    search: str | None = None,
    limit: int = 100,
) -> Sequence[Company]:
    """Companies matching every given filter, by name."""
    query = select(Company)
    if stage is not None:
        query = query.where(Company.stage == stage)
    if commune_code:
        query = query.where(Company.commune_code == commune_code)
    if naf_prefix:
        query = query.where(col(Company.naf_code).startswith(naf_prefix))
    if search:
        query = query.where(func.lower(Company.name).contains(search.lower()))
    return session.exec(query.order_by(Company.name).limit(limit)).all()


def count_by_stage(*, session: Session) -> dict[Stage, int]:
    """How many companies stand at each stage (every stage present, zero included)."""
    rows = session.exec(select(Company.stage, func.count()).group_by(Company.stage)).all()
    counts = dict.fromkeys(Stage, 0)
    counts.update({Stage(stage): count for stage, count in rows})
    return counts


def move_company(
    *,
    session: Session,
    company: Company,
    target: Stage,
    why: str,
    actor: str,
    now: datetime,
) -> StageChange:
    """Move ``company`` to ``target`` through the stage machine and record the change.

    Raises StageTransitionError when the move is not allowed, StageConflict when another
    writer changed the stage since it was read (the update is conditional on it).
    """
    current = Stage(company.stage)
    new_stage = transition(current, target)
    result = session.execute(
        sa.update(Company)
        .where(col(Company.id) == company.id, col(Company.stage) == current)
        .values(stage=new_stage, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StageConflict(f"l'étape de {company.name} a changé entre-temps ; réessayez")
    change = StageChange(
        company_id=company.id,  # type: ignore[arg-type]
        from_stage=current,
        to_stage=new_stage,
        at=now,
        why=why,
        actor=actor,
    )
    session.add(change)
    session.flush()
    session.refresh(company)
    return change


# --- corrections: history is append-only ---------------------------------------------------

# The ``why`` of a change that takes back an earlier one recorded by mistake.
CORRECTION = "correction : "


def is_correction(change: StageChange) -> bool:
    """Whether ``change`` takes back an earlier move (rather than moving the company on)."""
    return change.why.startswith(CORRECTION)


def standing_moves(changes: Sequence[StageChange]) -> list[StageChange]:
    """The moves of one company's history (oldest first) that no correction took back.

    A correction from B to A cancels the latest standing move from A to B before it; the
    corrections themselves are not moves of the pipeline and are left out.
    """
    standing: list[StageChange] = []
    for change in changes:
        if not is_correction(change):
            standing.append(change)
            continue
        for index in range(len(standing) - 1, -1, -1):
            move = standing[index]
            if (move.from_stage, move.to_stage) == (change.to_stage, change.from_stage):
                del standing[index]
                break
    return standing


def actor_label(
    actor: str, *, callers: Mapping[int, str] = {}, contacts: Mapping[int, str] = {}
) -> str:
    """Who made a change, as staff read it in French; ``callers`` and ``contacts`` name them by id.

    The history stores ``staff:<login>``, ``flow-run:<id>``, ``cli``, ``portal``,
    ``carrier``, ``caller:<id>`` and ``contact:<id>``; anything else is shown as stored.
    """
    kind, rest, number = _actor_parts(actor)
    if kind == "staff":
        return f"{rest} (équipe)" if rest else "l'équipe"
    if kind == "flow-run":
        # The run's first eight characters: what the Prefect UI shows in its run names' links.
        return (
            f"traitement automatique (exécution {rest[:8]})" if rest else "traitement automatique"
        )
    if kind == "caller" and number is not None:
        name = callers.get(number)
        return f"{name} (bénévole)" if name else f"bénévole n° {number}"
    if kind == "contact" and number is not None:
        name = contacts.get(number)
        return f"{name} (contact de l'entreprise)" if name else "un contact de l'entreprise"
    return _FIXED_ACTORS.get(actor, actor)


def actors_by_id(actors: Iterable[str]) -> dict[str, set[int]]:
    """The ids of the callers and of the contacts that ``actors`` name, for ``actor_label``'s names."""
    ids: dict[str, set[int]] = {"caller": set(), "contact": set()}
    for actor in actors:
        kind, _, number = _actor_parts(actor)
        if kind in ids and number is not None:
            ids[kind].add(number)
    return ids


def _actor_parts(actor: str) -> tuple[str, str, int | None]:
    """``caller:3`` → ("caller", "3", 3); ``cli`` → ("cli", "", None)."""
    kind, _, rest = actor.partition(":")
    return kind, rest, int(rest) if rest.isdigit() else None


_FIXED_ACTORS = {
    "cli": "l'équipe, en ligne de commande",
    "portal": "le portail",
    "carrier": "l'opérateur SMS (réponse STOP)",
}


def take_back_move(
    *,
    session: Session,
    company: Company,
    change: StageChange,
    why: str,
    actor: str,
    now: datetime,
) -> StageChange:
    """Return ``company`` to the stage ``change`` moved it from, recorded as a new change.

    Nothing is erased: the history shows the mistaken move, then this correction. The stage
    machine is not asked (a move back is not a step of the pipeline): this only ever restores
    the stage the company held just before ``change``, which must be its latest move.
    Raises StageConflict when the company is no longer where ``change`` left it.
    """
    current, back = Stage(change.to_stage), Stage(change.from_stage)
    result = session.execute(
        sa.update(Company)
        .where(col(Company.id) == company.id, col(Company.stage) == current)
        .values(stage=back, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StageConflict(f"l'étape de {company.name} a changé entre-temps ; réessayez")
    correction = StageChange(
        company_id=company.id,  # type: ignore[arg-type]
        from_stage=current,
        to_stage=back,
        at=now,
        why=f"{CORRECTION}{why}"[:1000],
        actor=actor,
    )
    session.add(correction)
    session.flush()
    session.refresh(company)
    return correction
