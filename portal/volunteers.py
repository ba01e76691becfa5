"""The volunteers' call page: one call of their daily list, its outcome noted (or corrected) from a phone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import phonenumbers
import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Form
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from models.db import write_transaction
from models.enums import CallOutcome, MessageStatus
from models.tables import Caller, CallTask, Company, Contact, Message
from portal.events import CallLoggedEvent
from portal.pages import PageRefused, Render
from synergie import french
from synergie.calls.callers import CallError
from synergie.calls.lists import OUTCOME_LABELS_FR, talking_points
from synergie.calls.outcomes import CorrectionRefused, correct_call, log_call
from synergie.messaging.links import CallLink, InvalidToken, read_call_log_token
from synergie.settings import Settings

__all__ = ["OUTCOME_CHOICES", "volunteers_router"]

logger = logging.getLogger(__name__)

# The form's choices, in the order a volunteer meets them.
OUTCOME_CHOICES: tuple[tuple[CallOutcome, str], ...] = (
    (CallOutcome.REACHED, "Joint"),
    (CallOutcome.INTERESTED, "Intéressé : prêt pour une visite"),
    (CallOutcome.NO_ANSWER, "Pas de réponse"),
    (CallOutcome.CALLBACK, "À rappeler (date ci-dessous)"),
    (CallOutcome.REFUSED, "Refus"),
    (CallOutcome.WRONG_NUMBER, "Mauvais numéro"),
)
_HINT = "Si le problème persiste, écrivez à la chargée de mission à l'adresse ci-dessous."


@dataclass(frozen=True)
class Earlier:
    """An earlier call to the company, as the page shows it."""

    day: str
    outcome: str
    notes: str


def _refused(status: int, title: str, message: str) -> PageRefused:
    return PageRefused(status, title, message, _HINT)


def _not_yours() -> PageRefused:
    # One message for every mismatch: it must not tell a prober which ids exist.
    return _refused(
        403,
        "Appel introuvable",
        "Ce lien ne correspond à aucun appel de votre liste : il a peut-être été modifié, ou "
        "l'appel a été confié à une autre personne.",
    )


def _phone(raw: str | None) -> tuple[str, str]:
    """The number as shown (French national format) and as dialled (E.164 for ``tel:``)."""
    if not raw:
        return "", ""
    try:
        number = phonenumbers.parse(raw, "FR")
    except phonenumbers.NumberParseException:
        return raw, raw
    shown = phonenumbers.format_number(
        number,
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 33
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    )
    return shown, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_outcome(value: str) -> CallOutcome:
    try:
        return CallOutcome(value)
    except ValueError:
        raise _refused(
            400, "Résultat manquant", "Choisissez le résultat de l'appel dans la liste."
        ) from None


def _parse_day(value: str) -> date | None:
    """A date as a date field sends it (AAAA-MM-JJ) or as typed where it is a text field (JJ/MM/AAAA)."""
    text = value.strip()
    if not text:
        return None
    try:
        if "/" in text:
            day, month, year = (int(part) for part in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        raise _refused(
            400, "Date illisible", "Indiquez la date du rappel au format JJ/MM/AAAA."
        ) from None


def volunteers_router(
    *,
    settings: Settings,
    engine: sa.Engine,
    render: Render,
    now: Callable[[], datetime],
    emit: Callable[[CallLoggedEvent], None],
) -> APIRouter:
    """Return the routes of ``/appel/{token}``: the call page and its outcome form."""
    key, *previous_keys = settings.link_verification_keys
    router = APIRouter()

    def link_of(token: str) -> CallLink:
        try:
            return read_call_log_token(token, key=key, now=now(), previous_keys=previous_keys)
        except InvalidToken as exc:
            logger.info("refused an invalid call link")
            raise _refused(400, "Lien non valide", str(exc)) from exc

    def task_of(session: Session, link: CallLink, *, lock: bool = False) -> CallTask:
        """The link's task, only if it is still this caller's call to this company."""
        query = select(CallTask).where(col(CallTask.id) == link.task_id)
        task = session.exec(query.with_for_update() if lock else query).first()
        if task is None or task.caller_id != link.caller_id or task.company_id != link.company_id:
            logger.warning("call link for task %s does not match its task", link.task_id)
            raise _not_yours()
        return task

    def page(
        session: Session, task: CallTask, *, status: int = 200, **extra: object
    ) -> HTMLResponse:
        company = session.get(Company, task.company_id)
        caller = session.get(Caller, task.caller_id)
        contact = session.get(Contact, task.contact_id) if task.contact_id else None
        assert company is not None and caller is not None
        sent = []
        for step, channel, sent_at in session.exec(
            select(Message.step, Message.channel, Message.sent_at)
            .where(col(Message.company_id) == company.id, col(Message.status) == MessageStatus.SENT)
            .order_by(col(Message.sent_at))
        ):
            when = french.short_date(sent_at.astimezone(settings.tz).date()) if sent_at else "?"
            sent.append(f"« {step} » ({channel}) le {when}")
        earlier = [
            Earlier(
                day=french.short_date(t.due_on),
                outcome=OUTCOME_LABELS_FR[CallOutcome(str(t.outcome))],
                notes=t.notes or "",
            )
            for t in session.exec(
                select(CallTask)
                .where(
                    col(CallTask.company_id) == company.id,
                    col(CallTask.id) != task.id,
                    col(CallTask.outcome).is_not(None),
                )
                .order_by(col(CallTask.id))
            )
        ]
        callback = (
            session.exec(
                select(CallTask.id).where(
                    col(CallTask.company_id) == company.id,
                    col(CallTask.outcome) == CallOutcome.CALLBACK,
                    col(CallTask.callback_on) == task.due_on,
                )
            ).first()
            is not None
        )
        shown, dialled = _phone(contact.phone if contact else None)
        return render(
            "appel.html",
            status,
            caller_name=caller.name,
            company=company,
            contact_name=(contact.name or "") if contact else "",
            contact_role=(contact.role or "") if contact else "",
            phone_shown=shown,
            phone_dialled=dialled,
            sent=sent,
            earlier=earlier,
            points=talking_points(company, sent, callback),
            attempt=task.attempt,
            choices=OUTCOME_CHOICES,
            task=task,
            noted_outcome=OUTCOME_LABELS_FR[CallOutcome(task.outcome)] if task.outcome else "",
            noted_at=french.moment(task.logged_at, settings.tz, weekday=False)
            if task.logged_at
            else "",
            today=now().astimezone(settings.tz).date().isoformat(),
            **{"recorded": False, "already": False, "corrected": False, "next_call": "", **extra},
        )

    @router.get("/appel/{token}", response_class=HTMLResponse)
    def call_page(token: str) -> HTMLResponse:
        """Show the call, and its outcome form (or what was noted, with a correction form)."""
        try:
            link = link_of(token)
            with Session(engine) as session:
                return page(session, task_of(session, link))
        except PageRefused as refused:
            return refused.page(render)

    @router.post("/appel/{token}", response_class=HTMLResponse)
    def note_call(
        token: str,
        background: BackgroundTasks,
        resultat: Annotated[str, Form()] = "",
        rappel: Annotated[str, Form()] = "",
        notes: Annotated[str, Form(max_length=2000)] = "",
        correction: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        """Record the outcome once; a second submission says it is noted, unless it corrects it."""
        try:
            link = link_of(token)
            outcome, on = _parse_outcome(resultat), _parse_day(rappel)
            if outcome == CallOutcome.CALLBACK and on is None:
                raise _refused(400, "Date manquante", "Pour un rappel, indiquez la date convenue.")
            actor = f"caller:{link.caller_id}"
            with write_transaction(engine) as connection, Session(bind=connection) as session:
                task = task_of(session, link, lock=True)
                if task.outcome is not None and correction != "1":
                    return page(session, task, already=True)
                company = session.get(Company, task.company_id)
                assert company is not None
                moment = now()
                try:
                    if task.outcome is not None:
                        logged = correct_call(
                            session=session, task=task, outcome=outcome, on=on, notes=notes,
                            actor=actor, now=moment, call_minutes=settings.call_minutes,
                            tz=settings.tz,
                        )  # fmt: skip
                    else:
                        logged = log_call(
                            session=session, company=company, outcome=outcome, on=on, notes=notes,
                            actor=actor, now=moment, call_minutes=settings.call_minutes,
                            tz=settings.tz,
                        )  # fmt: skip
                except CorrectionRefused as exc:
                    raise _refused(409, "Correction impossible", f"{exc}.") from exc
                except CallError as exc:
                    text = str(exc)
                    raise _refused(
                        400, "Appel non enregistré", f"{text[:1].upper()}{text[1:]}."
                    ) from exc
                if logged.task.id != task.id:  # log_call closes the company's open task: this one
                    raise RuntimeError("log_call closed another task than the link's")
                event = CallLoggedEvent(
                    company_id=company.id,  # type: ignore[arg-type]
                    company_siret=company.siret or "",
                    task_id=task.id,  # type: ignore[arg-type]
                    caller_id=link.caller_id,
                    outcome=outcome.value,
                    stage=logged.stage.value,
                    occurred=moment,
                    corrected=correction == "1",
                )
                session.flush()
                answer = page(
                    session, task, recorded=True, corrected=correction == "1",
                    next_call=french.short_date(logged.next_task.due_on) if logged.next_task else "",
                )  # fmt: skip
            # After the commit: a slow Prefect API never delays nor undoes what was noted.
            background.add_task(emit, event)
            logger.info("call task %s logged from its link: %s", task.id, outcome.value)
            return answer
        except PageRefused as refused:
            return refused.page(render)

    return router
