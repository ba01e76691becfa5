"""The follow-up survey's page: a contact answers through their signed link, and may come back to change the answer.

Works without JavaScript; every check is made on the server, and a page with errors comes back
with everything typed and each message tied to its question (``aria-describedby``). The page
carries the version of the answer it was built from: a save from an older page (another tab)
is refused, shown again with what was typed, and never overwrites the newer answer silently.
A contact's page shows that contact's answer only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from models.db import write_transaction
from models.surveys import Survey
from models.tables import Company, Contact, Meeting
from portal.events import SurveySubmittedEvent, emit_survey_submitted
from synergie import french
from synergie.meetings.planning import french_date
from synergie.messaging.links import InvalidToken
from synergie.settings import Settings
from synergie.surveys.answers import check_form, format_answer, typed_from_answers
from synergie.surveys.definition import SurveyDefinition
from synergie.surveys.outreach import is_open, read_survey_token
from synergie.surveys.responses import StaleAnswer, SurveyClosed, find_response, save_response

__all__ = ["survey_emitter", "surveys_router"]

logger = logging.getLogger(__name__)

Render = Callable[..., HTMLResponse]


def survey_emitter() -> Callable[[SurveySubmittedEvent], None]:
    """The function that announces an answer (Prefect by default; tests override this dependency)."""
    return emit_survey_submitted


class _Found:
    """What a genuine link leads to: the contact, their company, the survey and its meeting."""

    def __init__(
        self, contact: Contact, company: Company, survey: Survey, meeting: Meeting
    ) -> None:
        self.contact, self.company, self.survey, self.meeting = contact, company, survey, meeting
        self.definition = SurveyDefinition.from_stored(survey.definition)


def surveys_router(
    *, settings: Settings, engine: sa.Engine, render: Render, now: Callable[[], datetime]
) -> APIRouter:
    """Return the survey page's routes (``/suivi/{token}``) on ``engine``, rendered with the portal's ``render``."""
    router = APIRouter()
    hint = "Écrivez-nous à l'adresse ci-dessous : nous vous renverrons un lien."

    def error(status: int, title: str, message: str) -> HTMLResponse:
        return render("error.html", status, title=title, message=message, hint=hint)

    def find(session: Session, token: str) -> _Found | HTMLResponse:
        try:
            link = read_survey_token(token, settings=settings, now=now())
        except InvalidToken as exc:
            # Never log the token: it opens the contact's answer.
            logger.info("refused an invalid survey link")
            return error(400, "Lien non valide", str(exc))
        row = session.exec(
            select(Contact, Company)
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Contact.public_id == link.contact_public_id)
        ).first()
        survey = session.get(Survey, link.survey_id)
        meeting = session.get(Meeting, link.meeting_id)
        if row is None or survey is None or meeting is None or survey.meeting_id != meeting.id:
            return error(404, "Questionnaire introuvable",
                         "Ce lien est authentique, mais ce questionnaire ou la personne à qui il "
                         "était destiné ne figure plus dans nos fichiers.")  # fmt: skip
        return _Found(row[0], row[1], survey, meeting)

    def page(found: _Found, status: int = 200, **extra: Any) -> HTMLResponse:
        closes_on, _ = french_date(found.survey.closes_at - timedelta(seconds=1), settings.tz)
        meeting_day, _ = french_date(found.meeting.starts_at, settings.tz)
        context: dict[str, Any] = {
            "typed": {}, "errors": {}, "version": 0, "notice": "", "problem": "",
            "answered_on": "", "closed": not is_open(found.survey, now()), **extra,
        }  # fmt: skip
        return render(
            "suivi.html", status, survey=found.definition, meeting_title=found.meeting.title,
            meeting_day=meeting_day, company_name=found.company.name,
            contact_name=found.contact.name or "", closes_on=closes_on, **context,
        )  # fmt: skip

    def when(moment: datetime) -> str:
        return french.moment(moment, settings.tz, weekday=False)

    @router.get("/suivi/{token}", response_class=HTMLResponse)
    def survey_page(token: str) -> HTMLResponse:
        """Show the survey: empty, or with this contact's own answer to change."""
        with Session(engine) as session:
            found = find(session, token)
            if isinstance(found, HTMLResponse):
                return found
            response = find_response(
                session,
                survey_id=found.survey.id,  # type: ignore[arg-type]
                contact_id=found.contact.id,  # type: ignore[arg-type]
            )
        if response is None:
            return page(found)
        return page(
            found, typed=typed_from_answers(found.definition, response.answers),
            version=response.version, answered_on=when(response.updated_at),
        )  # fmt: skip

    def submit(token: str, form: Any) -> tuple[HTMLResponse, SurveySubmittedEvent | None]:
        with Session(engine) as session:
            found = find(session, token)
        if isinstance(found, HTMLResponse):
            return found, None
        try:
            version = max(0, int(str(form.get("version", "0"))))
        except ValueError:
            version = 0
        checked = check_form(found.definition, lambda name: [str(v) for v in form.getlist(name)])
        if not checked.valid:
            count = len(checked.errors)
            return page(
                found, 422, typed=checked.typed, errors=checked.errors, version=version,
                problem=f"{count} réponse(s) à corriger : rien n'a été enregistré. Vos réponses "
                "sont conservées ci-dessous, chaque erreur sous sa question.",
            ), None  # fmt: skip
        moment = now()
        try:
            with write_transaction(engine) as connection:
                session = Session(bind=connection, expire_on_commit=False)
                survey = session.get(Survey, found.survey.id)
                contact = session.get(Contact, found.contact.id)
                assert survey is not None and contact is not None
                saved = save_response(session=session, survey=survey, contact=contact,
                                      answers=checked.answers, expected_version=version, now=moment)  # fmt: skip
                session.close()
        except SurveyClosed:
            return page(found, 409, closed=True), None
        except StaleAnswer as exc:
            current = exc.current
            # What they typed stays on the page; the version becomes the newer one, so sending
            # again is a deliberate choice to replace the answer saved elsewhere.
            return page(
                found, 409, typed=checked.typed, version=current.version if current else 0,
                problem=f"{exc} Votre réponse enregistrée date du "
                f"{when(current.updated_at) if current else '—'}. Les réponses ci-dessous sont "
                "celles de cette page : renvoyez-les pour remplacer l'autre réponse, ou ouvrez de "
                "nouveau le lien pour la voir.",
            ), None  # fmt: skip
        logger.info(
            "survey %s: contact %s answered (version %d)",
            found.survey.id,
            found.contact.id,
            saved.version,
        )
        event = SurveySubmittedEvent(
            survey_id=found.survey.id, meeting_id=found.meeting.id, company_id=found.company.id,  # type: ignore[arg-type]
            contact_public_id=found.contact.public_id, version=saved.version, occurred=moment,
        )  # fmt: skip
        closes_on, _ = french_date(found.survey.closes_at - timedelta(seconds=1), settings.tz)
        done = render(
            "suivi-merci.html", survey_title=found.survey.title, meeting_title=found.meeting.title,
            updated=saved.updated, survey_path=f"/suivi/{token}", closes_on=closes_on,
            answers=[(q.label, format_answer(q, checked.answers.get(q.id))) for q in found.definition.questions],
        )  # fmt: skip
        return done, event

    @router.post("/suivi/{token}", response_class=HTMLResponse)
    async def send_survey(
        token: str,
        request: Request,
        background: BackgroundTasks,
        emit: Annotated[Callable[[SurveySubmittedEvent], None], Depends(survey_emitter)],
    ) -> HTMLResponse:
        """Check and store the answer (first, or an update of the one shown), then announce it."""
        form = await request.form()
        response, event = await run_in_threadpool(submit, token, form)
        if event is not None:
            # After the commit and after the answer: a slow Prefect API must not delay the person.
            background.add_task(_emit_safely, emit, event)
        return response

    return router


def _emit_safely(emit: Callable[[SurveySubmittedEvent], None], event: SurveySubmittedEvent) -> None:
    try:
        emit(event)
    except Exception:
        logger.exception(
            "survey-submitted event for survey %s could not be emitted", event.survey_id
        )
