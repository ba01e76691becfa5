"""The day's call lists: companies due a call shared among the callers available, and their digest."""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from models.companies import CORRECTION
from models.enums import CallOutcome, MessageStatus, Stage
from models.tables import (
    Caller,
    CallTask,
    Company,
    Contact,
    Message,
    OptOut,
    StageChange,
)
from synergie import french
from synergie.messaging.optouts import suppressed
from synergie.messaging.rendering import MailTemplates, RenderedEmail, SmsTemplates

logger = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
DIGEST_TEMPLATE = "appels-du-jour"
# Only these stages are still waiting for a call; exits never reach a call list.
CALLABLE_STAGES = (Stage.CONTACTED, Stage.CALLED)
MAX_NO_ANSWER = 3

OUTCOME_LABELS_FR: dict[CallOutcome, str] = {
    CallOutcome.REACHED: "joint",
    CallOutcome.INTERESTED: "intéressé (prêt pour une visite)",
    CallOutcome.NO_ANSWER: "pas de réponse",
    CallOutcome.CALLBACK: "à rappeler",
    CallOutcome.REFUSED: "refus",
    CallOutcome.WRONG_NUMBER: "mauvais numéro",
}


def next_working_day(day: date) -> date:
    """The next Monday-to-Friday day after ``day``."""
    following = day + timedelta(days=1)
    while following.isoweekday() > 5:
        following += timedelta(days=1)
    return following


def _refuses_anything() -> sa.ColumnElement[bool]:
    """SQL: the contact opted out of something, on its own row or on the suppression list."""
    return sa.or_(
        sa.exists().where(col(OptOut.contact_id) == col(Contact.id)),
        suppressed(col(Contact.phone), None),
        suppressed(sa.func.lower(col(Contact.email)), None),
    )


def callable_contacts(session: Session, company_ids: Iterable[int]) -> dict[int, Contact]:
    """The contact to call per company: has a phone, not marked invalid, never opted out of anything.

    "Anything" covers its own opt-out rows and the suppression list, on its number and on its
    e-mail address, whatever row they were recorded through.
    """
    ids = list(company_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(Contact)
        .where(
            col(Contact.company_id).in_(ids),
            col(Contact.phone).is_not(None),
            col(Contact.phone) != "",
            col(Contact.phone_invalid_at).is_(None),
            ~_refuses_anything(),
        )
        .order_by(col(Contact.id))
    ).all()
    chosen: dict[int, Contact] = {}
    for contact in rows:
        chosen.setdefault(contact.company_id, contact)
    return chosen


def companies_due_for_call(
    *, session: Session, today: date, after_days: int, tz: ZoneInfo = PARIS
) -> list[tuple[Company, Contact]]:
    """Companies at ``contacted`` since at least ``after_days`` days, with no open call, oldest first."""
    cutoff = datetime.combine(today - timedelta(days=after_days - 1), time(), tzinfo=tz)
    contacted = (
        select(
            col(StageChange.company_id).label("company_id"),
            func.max(StageChange.at).label("contacted_at"),
        )
        # A correction back to "contacted" is not a new contact: the wait runs from the mailing.
        .where(
            col(StageChange.to_stage) == Stage.CONTACTED,
            ~col(StageChange.why).startswith(CORRECTION),
        )
        .group_by(col(StageChange.company_id))
        .subquery()
    )
    open_task = sa.exists().where(
        col(CallTask.company_id) == col(Company.id), col(CallTask.outcome).is_(None)
    )
    since = func.coalesce(contacted.c.contacted_at, col(Company.updated_at))
    companies = session.exec(
        select(Company)
        .outerjoin(contacted, contacted.c.company_id == col(Company.id))
        .where(col(Company.stage) == Stage.CONTACTED, ~open_task, since < cutoff)
        .order_by(since, col(Company.id))
    ).all()
    contacts = callable_contacts(session, (c.id for c in companies if c.id is not None))
    return [(company, contacts[company.id]) for company in companies if company.id in contacts]


def _is_callback(session: Session, tasks: Sequence[CallTask]) -> set[int]:
    """Ids of ``tasks`` that are callbacks someone asked for (a closed ``callback`` task on that date)."""
    companies = {task.company_id for task in tasks}
    if not companies:
        return set()
    asked = {
        (company_id, callback_on)
        for company_id, callback_on in session.execute(
            sa.select(col(CallTask.company_id), col(CallTask.callback_on)).where(
                col(CallTask.company_id).in_(companies),
                col(CallTask.outcome) == CallOutcome.CALLBACK,
            )
        )
    }
    return {task.id for task in tasks if (task.company_id, task.due_on) in asked and task.id}


def available_callers(*, session: Session, today: date) -> list[Caller]:
    """Active callers who work on ``today``'s weekday and can be messaged."""
    callers = session.exec(select(Caller).where(col(Caller.active)).order_by(col(Caller.id))).all()
    return [
        caller
        for caller in callers
        if today.isoweekday() in (caller.days_available or []) and (caller.phone or caller.email)
    ]


def assign_calls(
    *, session: Session, today: date, after_days: int, now: datetime, tz: ZoneInfo = PARIS
) -> dict[int, list[CallTask]]:
    """Share today's calls among available callers within capacity; return the tasks newly assigned.

    Open tasks due by today come first (callbacks before the others), then companies newly
    due, oldest contacted first. Tasks already assigned today count against a caller's
    capacity and are not moved, so a second run the same day assigns nothing new.
    """
    callers = available_callers(session=session, today=today)
    assigned: dict[int, list[CallTask]] = defaultdict(list)
    if not callers:
        return {}
    load = dict(
        session.exec(
            select(CallTask.caller_id, func.count())
            .where(col(CallTask.assigned_on) == today, col(CallTask.caller_id).is_not(None))
            .group_by(col(CallTask.caller_id))
        ).all()
    )
    room = {caller.id: caller.calls_per_day - load.get(caller.id, 0) for caller in callers}
    rotation = itertools.cycle([caller.id for caller in callers])

    def next_caller() -> int | None:
        for _ in range(len(callers)):
            caller_id = next(rotation)
            if room[caller_id] > 0:
                return caller_id
        return None

    # Open tasks (no-answer retries, callbacks, calls not logged yesterday) still due.
    pending = session.exec(
        select(CallTask)
        .join(Company, col(Company.id) == col(CallTask.company_id))
        .where(
            col(CallTask.outcome).is_(None),
            col(CallTask.due_on) <= today,
            sa.or_(col(CallTask.assigned_on).is_(None), col(CallTask.assigned_on) != today),
            col(Company.stage).in_(CALLABLE_STAGES),
        )
        .order_by(col(CallTask.due_on), col(CallTask.id))
    ).all()
    callbacks = _is_callback(session, pending)
    pending = sorted(pending, key=lambda task: task.id not in callbacks)
    contacts = callable_contacts(session, {task.company_id for task in pending})
    for task in pending:
        contact = contacts.get(task.company_id)
        caller_id = next_caller() if contact is not None else None
        if contact is None or caller_id is None:
            continue
        task.contact_id, task.caller_id, task.assigned_on = contact.id, caller_id, today
        session.add(task)
        room[caller_id] -= 1
        assigned[caller_id].append(task)

    for company, contact in companies_due_for_call(
        session=session, today=today, after_days=after_days, tz=tz
    ):
        caller_id = next_caller()
        if caller_id is None:
            break
        task = CallTask(
            company_id=company.id,  # type: ignore[arg-type]
            contact_id=contact.id,
            caller_id=caller_id,
            due_on=today,
            assigned_on=today,
            created_at=now,
        )
        session.add(task)
        room[caller_id] -= 1
        assigned[caller_id].append(task)
    session.flush()
    logger.info(
        "assigned %d calls to %d callers for %s",
        sum(len(v) for v in assigned.values()), len(assigned), today,
    )  # fmt: skip
    return dict(assigned)


def todays_calls(*, session: Session, today: date) -> dict[int, list[CallTask]]:
    """Every open task assigned for ``today``, per caller (what the digests list).

    A contact who opted out since the task was assigned is left off the list.
    """
    tasks = session.exec(
        select(CallTask)
        .join(Company, col(Company.id) == col(CallTask.company_id))
        .outerjoin(Contact, col(Contact.id) == col(CallTask.contact_id))
        .where(
            col(CallTask.assigned_on) == today,
            col(CallTask.outcome).is_(None),
            col(CallTask.caller_id).is_not(None),
            col(Company.stage).in_(CALLABLE_STAGES),
            sa.or_(col(Contact.id).is_(None), ~_refuses_anything()),
        )
        .order_by(col(CallTask.id))
    ).all()
    callbacks = _is_callback(session, tasks)
    per_caller: dict[int, list[CallTask]] = defaultdict(list)
    for task in sorted(tasks, key=lambda task: task.id not in callbacks):
        per_caller[task.caller_id].append(task)  # type: ignore[index]
    return dict(per_caller)


# --- the caller's digest -----------------------------------------------------------------


@dataclass(frozen=True)
class CallSheetLine:
    """One call on a caller's list: whom to call and what they already received."""

    company: str
    commune: str
    siret: str
    contact: str
    phone: str
    sent: list[str]
    callback: bool
    attempt: int
    talking_points: tuple[str, str]
    log_url: str = ""  # the volunteer's page to note this call's outcome (empty: none)


@dataclass(frozen=True)
class CallerDigest:
    """A caller's messages of the day: the SMS text and the e-mail."""

    caller_id: int
    count: int
    sms: str
    email: RenderedEmail
    lines: list[CallSheetLine] = field(default_factory=list)


def talking_points(company: Company, sent: list[str], callback: bool) -> tuple[str, str]:
    """Two lines to open the call with."""
    if callback:
        first = f"Rappel convenu avec {company.name} : rappeler l'échange précédent."
    elif sent:
        first = f"Vérifier que le courrier ({sent[-1]}) a bien été reçu et lu."
    else:
        first = "Présenter la démarche d'écologie industrielle et territoriale, gratuite."
    second = "Proposer une rencontre d'une heure sur site avec la chargée de mission."
    return first, second


def caller_digest(
    *,
    session: Session,
    caller: Caller,
    tasks: Sequence[CallTask],
    today: date,
    programme: dict[str, str],
    mail_templates: MailTemplates,
    sms_templates: SmsTemplates,
    tz: ZoneInfo = PARIS,
    log_link: Callable[[CallTask], str] | None = None,
) -> CallerDigest | None:
    """The SMS and e-mail listing ``tasks`` for ``caller``; None when there is nothing to call.

    ``log_link`` gives each call's page where the caller notes its outcome.
    """
    if not tasks:
        return None
    company_ids = [task.company_id for task in tasks]
    companies = {
        c.id: c for c in session.exec(select(Company).where(col(Company.id).in_(company_ids)))
    }
    contact_ids = [task.contact_id for task in tasks if task.contact_id is not None]
    contacts = {
        c.id: c for c in session.exec(select(Contact).where(col(Contact.id).in_(contact_ids)))
    }
    sent: dict[int, list[str]] = defaultdict(list)
    for company_id, step, sent_at in session.exec(
        select(Message.company_id, Message.step, Message.sent_at)
        .where(col(Message.company_id).in_(company_ids), col(Message.status) == MessageStatus.SENT)
        .order_by(col(Message.sent_at))
    ):
        when = french.short_date(sent_at.astimezone(tz).date()) if sent_at else "?"
        sent[company_id].append(f"« {step} » le {when}")  # type: ignore[index]
    callbacks = _is_callback(session, tasks)
    lines = []
    for task in tasks:
        company = companies[task.company_id]
        contact = contacts.get(task.contact_id) if task.contact_id is not None else None
        history = sent.get(task.company_id, [])
        lines.append(
            CallSheetLine(
                company=company.name,
                commune=company.commune or "",
                siret=company.siret or "",
                contact=(contact.name or "") if contact else "",
                phone=(contact.phone or "") if contact else "",
                sent=history,
                callback=task.id in callbacks,
                attempt=task.attempt,
                talking_points=talking_points(company, history, task.id in callbacks),
                log_url=log_link(task) if log_link is not None else "",
            )
        )
    context: dict[str, Any] = {
        "caller": {"name": caller.name},
        "day": french.short_date(today),
        "count": len(lines),
        "calls": lines,
        "programme": programme,
    }
    return CallerDigest(
        caller_id=caller.id,  # type: ignore[arg-type]
        count=len(lines),
        sms=sms_templates.render(DIGEST_TEMPLATE, context),
        email=mail_templates.render(DIGEST_TEMPLATE, context),
        lines=lines,
    )


def digest_step(today: date) -> str:
    """The outbox step of a day's digests: ``appels-YYYY-MM-DD``."""
    return f"appels-{today.isoformat()}"


def call_link_expiry(day: date, days_after: int, tz: ZoneInfo = PARIS) -> datetime:
    """When a call link of ``day``'s list stops working: midnight after ``days_after`` more days."""
    return datetime.combine(day + timedelta(days=days_after + 1), time(), tzinfo=tz)
