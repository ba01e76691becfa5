"""Logging a call's outcome: the stage it moves the company to, and the next call task.

Outcomes drive the stage machine (every move goes through ``move_company``):

    outcome        company (at contacted, or called)     call tasks
    reached        → called                              closed
    interested     → called (ready for a visit: the      closed, outcome "interested"
                   visits work picks these tasks)
    callback       → called                              closed, new task due on ``on``
    refused        → declined                            closed
    wrong-number   unchanged, contact's phone invalid    closed
    no-answer      unchanged; 3rd attempt → unreachable  new task next working day, attempt + 1

A call logged for a company with no open task (a spontaneous call) gets a task made on the
spot, provided the company is at ``contacted`` or ``called``; at any other stage logging is
refused with a French message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.companies import StageConflict, move_company, standing_moves, take_back_move
from models.enums import Activity, CallOutcome, Stage
from models.tables import (
    CallTask,
    Company,
    Contact,
    StageChange,
    TimeEntry,
)
from synergie.calls.callers import CallError
from synergie.calls.lists import (
    CALLABLE_STAGES,
    MAX_NO_ANSWER,
    OUTCOME_LABELS_FR,
    PARIS,
    callable_contacts,
    next_working_day,
)

# --- logging a call ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedCall:
    """What logging a call did: the closed task, the stage reached, the next task if any."""

    task: CallTask
    stage: Stage
    next_task: CallTask | None


def _open_task(session: Session, company: Company, today: date) -> CallTask:
    """The company's open task, or a new one for a spontaneous call (CallError at other stages)."""
    task = session.exec(
        select(CallTask).where(
            col(CallTask.company_id) == company.id, col(CallTask.outcome).is_(None)
        )
    ).first()
    if task is not None:
        return task
    contacts = callable_contacts(session, [company.id])  # type: ignore[list-item]
    contact = contacts.get(company.id)  # type: ignore[arg-type]
    task = CallTask(
        company_id=company.id,  # type: ignore[arg-type]
        contact_id=contact.id if contact else None,
        due_on=today,
        assigned_on=today,
    )
    session.add(task)
    session.flush()
    return task


def log_call(
    *,
    session: Session,
    company: Company,
    outcome: CallOutcome,
    on: date | None,
    notes: str | None,
    actor: str,
    now: datetime,
    call_minutes: int,
    tz: ZoneInfo = PARIS,
    book_time: bool = True,
) -> LoggedCall:
    """Record a call's outcome, move the company accordingly and book the call's staff time.

    ``book_time`` is False for a correction: the call's time was booked when first logged.
    """
    outcome = CallOutcome(outcome)
    today = now.astimezone(tz).date()
    stage = Stage(company.stage)
    if stage not in CALLABLE_STAGES:
        raise CallError(
            f"{company.name} est à l'étape « {stage.value} » : un appel ne se consigne qu'à "
            "l'étape « contacted » ou « called »"
        )
    if outcome == CallOutcome.CALLBACK and on is None:
        raise CallError("pour un rappel, indiquez sa date avec --on AAAA-MM-JJ")
    if on is not None and on < today:
        raise CallError(f"la date {on.isoformat()} est passée : indiquez une date à venir")
    task = _open_task(session, company, today)
    task.outcome = outcome
    task.notes = notes.strip()[:2000] if notes and notes.strip() else None
    task.logged_at = now
    task.logged_by = actor[:200]
    if outcome == CallOutcome.CALLBACK:
        task.callback_on = on
    session.add(task)
    session.flush()  # close it before a new open task may exist (one open task per company)

    why = f"appel : {OUTCOME_LABELS_FR[outcome]}" + (f" — {task.notes}" if task.notes else "")
    next_task: CallTask | None = None

    def move(target: Stage) -> None:
        if Stage(company.stage) != target:
            move_company(session=session, company=company, target=target, why=why[:1000],
                         actor=actor, now=now)  # fmt: skip

    if outcome in (CallOutcome.REACHED, CallOutcome.INTERESTED):
        move(Stage.CALLED)
    elif outcome == CallOutcome.CALLBACK and on is not None:  # checked above
        move(Stage.CALLED)
        next_task = CallTask(
            company_id=task.company_id, contact_id=task.contact_id, due_on=on, attempt=1
        )
    elif outcome == CallOutcome.REFUSED:
        move(Stage.DECLINED)
    elif outcome == CallOutcome.WRONG_NUMBER:
        if task.contact_id is not None:
            contact = session.get(Contact, task.contact_id)
            if contact is not None:
                contact.phone_invalid_at = now
                session.add(contact)
    elif outcome == CallOutcome.NO_ANSWER and task.attempt >= MAX_NO_ANSWER:
        move(Stage.UNREACHABLE)
    elif outcome == CallOutcome.NO_ANSWER:
        next_task = CallTask(
            company_id=task.company_id,
            contact_id=task.contact_id,
            due_on=on or next_working_day(today),
            attempt=task.attempt + 1,
        )
    if next_task is not None:
        next_task.created_at = now
        session.add(next_task)
    if book_time:
        session.add(
            TimeEntry(
                activity=Activity.CALL,
                hours=round(call_minutes / 60, 4),
                company_id=company.id,
                day=today,
                actor=actor[:200],
                created_at=now,
            )
        )
    session.flush()
    session.refresh(company)
    return LoggedCall(task=task, stage=Stage(company.stage), next_task=next_task)


# --- correcting a call logged by mistake ----------------------------------------------------


class CorrectionRefused(CallError):
    """The call cannot be corrected any more: something happened since it was logged."""


def undo_call(*, session: Session, task: CallTask, why: str, actor: str, now: datetime) -> None:
    """Take back what logging ``task`` did, leaving it open as before; CorrectionRefused when too late.

    A correction stands in for the first answer, as if it had been given right away, but
    erases no history: the stage move of that log is taken back by a new change (``why``
    starts with "correction : "), the follow-up task it planned (still unassigned) goes, and
    the phone it marked invalid is valid again. The time booked for the call stays (the call
    was made). It is refused once anything else touched the company since (a later stage
    move, a follow-up task already assigned or logged), rather than rewrite what someone
    already acted on.
    """
    if task.outcome is None or task.logged_at is None:
        raise CorrectionRefused("cet appel n'a pas encore été noté")
    logged_at, logged_by = task.logged_at, task.logged_by or ""
    history = session.exec(
        select(StageChange)
        .where(col(StageChange.company_id) == task.company_id)
        .order_by(col(StageChange.id))
    ).all()
    if any(c.at > logged_at or (c.at == logged_at and c.actor != logged_by) for c in history):
        raise CorrectionRefused(
            "l'entreprise a changé d'étape depuis cet appel : la correction ne peut plus se faire ici"
        )
    follow_up = session.exec(
        select(CallTask).where(
            col(CallTask.company_id) == task.company_id,
            col(CallTask.id) != task.id,
            col(CallTask.created_at) == logged_at,
        )
    ).first()
    if follow_up is not None and (follow_up.outcome is not None or follow_up.caller_id is not None):
        raise CorrectionRefused(
            "l'appel suivant est déjà attribué ou noté : la correction ne peut plus se faire ici"
        )
    ours = [
        c for c in standing_moves(history) if c.at == logged_at and c.actor == logged_by
    ]  # the move this log made, if it made one
    company = session.get(Company, task.company_id)
    assert company is not None  # a task's company is never deleted
    try:
        for move in reversed(ours):
            take_back_move(session=session, company=company, change=move, why=why, actor=actor,
                           now=now)  # fmt: skip
    except StageConflict as exc:
        raise CorrectionRefused(str(exc)) from exc
    if follow_up is not None:
        session.delete(follow_up)
        session.flush()  # gone before this task reopens: one open task per company
    if task.outcome == CallOutcome.WRONG_NUMBER and task.contact_id is not None:
        contact = session.get(Contact, task.contact_id)
        if contact is not None and contact.phone_invalid_at == logged_at:
            contact.phone_invalid_at = None
            session.add(contact)
    task.outcome, task.notes, task.callback_on = None, None, None
    task.logged_at, task.logged_by = None, None
    session.add(task)
    session.flush()


def correct_call(
    *,
    session: Session,
    task: CallTask,
    outcome: CallOutcome,
    on: date | None,
    notes: str | None,
    actor: str,
    now: datetime,
    call_minutes: int,
    tz: ZoneInfo = PARIS,
) -> LoggedCall:
    """Replace the outcome logged for ``task`` by another: take the first back, then log the new one."""
    if task.outcome is None:
        raise CorrectionRefused("cet appel n'a pas encore été noté")
    outcome = CallOutcome(outcome)
    why = (
        f"appel noté « {OUTCOME_LABELS_FR[CallOutcome(task.outcome)]} » par erreur, "
        f"corrigé en « {OUTCOME_LABELS_FR[outcome]} »"
    )
    undo_call(session=session, task=task, why=why, actor=actor, now=now)
    company = session.get(Company, task.company_id)
    assert company is not None  # a task's company is never deleted
    return log_call(
        session=session, company=company, outcome=outcome, on=on, notes=notes, actor=actor,
        now=now, call_minutes=call_minutes, tz=tz, book_time=False,
    )  # fmt: skip
