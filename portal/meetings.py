"""The portal's meeting pages: answer an invitation (RSVP) and bring a company (referral), by signed links.

A GET only shows (mail scanners follow links); a POST records, under the meeting's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from models.enums import Answer, MeetingStatus
from models.tables import Company, Contact, Meeting, Registration
from portal.events import INVITATION_ANSWERED_EVENT, REFERRAL_CREATED_EVENT, MeetingEvent
from synergie.meetings.planning import french_date
from synergie.meetings.referrals import ReferralRefused, create_referral, validate_referral
from synergie.meetings.registrations import (
    AnswerRefused,
    lock_meeting,
    record_answer,
    waiting_position,
)
from synergie.messaging.links import REFERRAL, RSVP, InvalidToken, meeting_token, read_token
from synergie.settings import Settings

__all__ = ["add_meeting_pages"]

logger = logging.getLogger(__name__)

# The answer in a link's path or the form, and what it means.
CHOICES: dict[str, Answer] = {
    "oui": Answer.REGISTERED,
    "non": Answer.DECLINED,
    "peut-etre": Answer.MAYBE,
}
_CHOICE_OF = {answer: choice for choice, answer in CHOICES.items()}
_REFERRAL_FIELDS = (
    "company_name",
    "siret",
    "postcode",
    "commune",
    "contact_name",
    "email",
    "phone",
    "consent",
)


class _PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


def _emit_safely(emit: Callable[[MeetingEvent], None], event: MeetingEvent) -> None:
    try:
        emit(event)
    except Exception:
        logger.exception("meeting event %s could not be emitted", event.name)


def add_meeting_pages(
    app: FastAPI,
    *,
    settings: Settings,
    engine: sa.Engine,
    render: Callable[..., HTMLResponse],
    writing: Callable[[], AbstractContextManager[Session]],
    now: Callable[[], datetime],
    emit: Callable[[MeetingEvent], None],
) -> None:
    """Add ``/reunion/{token}`` (answer) and ``/parrainage/{token}`` (referral) to the portal."""
    key, *previous_keys = settings.link_verification_keys

    def claims_of(token: str, purpose: str) -> tuple[str, int]:
        try:
            claims = read_token(
                token, key=key, purpose=purpose, now=now(), previous_keys=previous_keys
            )
            prefix, _, number = (claims.channel or "").partition("-")
            if prefix != "meeting" or not number.isdigit():
                raise InvalidToken()
        except InvalidToken as exc:
            logger.info("refused an invalid %s link", purpose)
            raise _PageError(400, "Lien non valide", str(exc)) from exc
        return claims.subject, int(number)

    def load(
        session: Session, public_id: str, meeting_id: int
    ) -> tuple[Meeting, Contact, Company, Registration]:
        meeting = session.get(Meeting, meeting_id)
        row = session.exec(
            select(Contact, Company)
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Contact.public_id == public_id)
        ).first()
        registration = (
            session.exec(
                select(Registration).where(
                    Registration.meeting_id == meeting_id, Registration.company_id == row[1].id
                )
            ).first()
            if row is not None and meeting is not None
            else None
        )
        if meeting is None or row is None or registration is None or registration.removed:
            raise _PageError(
                404, "Invitation introuvable",
                "Ce lien est authentique, mais cette invitation n'est plus dans nos fichiers.",
            )  # fmt: skip
        return meeting, row[0], row[1], registration

    def meeting_view(meeting: Meeting) -> dict[str, Any]:
        day, hour = french_date(meeting.starts_at, settings.tz)
        _, end = french_date(meeting.ends_at, settings.tz)
        return {"title": meeting.title, "format": meeting.format, "day": day, "hour": hour,
                "end_hour": end, "place": meeting.place, "agenda": meeting.agenda,
                "per_company": meeting.per_company}  # fmt: skip

    def closed_reason(meeting: Meeting) -> str:
        if meeting.status == MeetingStatus.CANCELLED:
            return "Cette rencontre a été annulée : il n'est plus possible d'y répondre."
        if meeting.status == MeetingStatus.HELD or now() >= meeting.starts_at:
            return "Cette rencontre a commencé ou a eu lieu : les réponses sont closes."
        return ""

    def error_page(exc: _PageError) -> HTMLResponse:
        return render("error.html", exc.status, title=exc.title, message=exc.message, hint="")

    def rsvp_page(
        token: str, meeting: Meeting, company: Company, registration: Registration, *,
        choice: str | None = None, people: int | None = None, note: str | None = None,
        problem: str = "", status: int = 200,
    ) -> HTMLResponse:  # fmt: skip
        current = Answer(registration.status)
        return render(
            "rsvp.html", status, token=token, meeting=meeting_view(meeting), company_name=company.name,
            current=current.value, choice=choice or _CHOICE_OF.get(current, "oui"),
            people=people or registration.people or 1, note=note if note is not None else (registration.note or ""),
            position=waiting_position_of(registration), closed=closed_reason(meeting), problem=problem,
        )  # fmt: skip

    def waiting_position_of(registration: Registration) -> int | None:
        if registration.status != Answer.WAITING:
            return None
        with Session(engine) as session:
            return waiting_position(session, registration)

    @app.get("/reunion/{token}", response_class=HTMLResponse)
    @app.get("/reunion/{token}/{choice}", response_class=HTMLResponse)
    def show_rsvp(token: str, choice: str | None = None) -> HTMLResponse:
        """Show the meeting and the answer form, the link's answer preselected; changes nothing."""
        try:
            public_id, meeting_id = claims_of(token, RSVP)
            with Session(engine) as session:
                meeting, _contact, company, registration = load(session, public_id, meeting_id)
        except _PageError as exc:
            return error_page(exc)
        return rsvp_page(
            token, meeting, company, registration, choice=choice if choice in CHOICES else None
        )

    @app.post("/reunion/{token}", response_class=HTMLResponse)
    async def answer(token: str, request: Request, background: BackgroundTasks) -> HTMLResponse:
        """Record the answer (people, note) and show where the company stands: registered, waiting, declined."""
        form = await request.form()
        choice = str(form.get("reponse") or "")
        note = str(form.get("note") or "")
        try:
            people = int(str(form.get("personnes") or "1"))
        except ValueError:
            people = 0
        try:
            public_id, meeting_id = claims_of(token, RSVP)
        except _PageError as exc:
            return error_page(exc)
        if choice not in CHOICES:
            return error_page(
                _PageError(400, "Réponse manquante", "Choisissez une réponse dans le formulaire.")
            )
        moment = now()
        try:
            with writing() as session:
                lock_meeting(session, meeting_id)  # first: answers to one meeting go one at a time
                meeting, contact, company, registration = load(session, public_id, meeting_id)
                try:
                    outcome = record_answer(
                        session=session, meeting=meeting, registration=registration, answer=CHOICES[choice],
                        people=people, note=note, contact_id=contact.id, now=moment,
                    )  # fmt: skip
                except AnswerRefused as exc:
                    return rsvp_page(token, meeting, company, registration, choice=choice, people=people or None,
                                     note=note, problem=str(exc), status=409)  # fmt: skip
                registration = outcome.registration
                view = {"answer": registration.status.value, "people": registration.people,
                        "position": outcome.position, "company_name": company.name,
                        "meeting": meeting_view(meeting), "changed": outcome.changed,
                        # Relative: the page stays on the host the person reached.
                        "referral_url": "/parrainage/" + meeting_token(settings, REFERRAL, contact.public_id, meeting_id)
                        if registration.status == Answer.REGISTERED else "",
                        "change_url": f"/reunion/{token}"}  # fmt: skip
                event = MeetingEvent(
                    name=INVITATION_ANSWERED_EVENT, meeting_id=meeting_id, company_id=company.id,  # type: ignore[arg-type]
                    contact_public_id=public_id, occurred=moment, answer=registration.status.value,
                )  # fmt: skip
        except _PageError as exc:
            return error_page(exc)
        if outcome.changed:
            background.add_task(_emit_safely, emit, event)
        return render("rsvp_done.html", **view)

    def referrer_of(session: Session, token: str) -> tuple[str, Meeting, Contact, Company]:
        public_id, meeting_id = claims_of(token, REFERRAL)
        meeting, contact, company, registration = load(session, public_id, meeting_id)
        if registration.status != Answer.REGISTERED:
            raise _PageError(
                403, "Lien réservé aux participants",
                "Ce lien sert aux entreprises inscrites à la rencontre pour y inviter une entreprise "
                "de leur réseau : votre entreprise n'y est pas inscrite pour l'instant.",
            )  # fmt: skip
        if closed_reason(meeting):
            raise _PageError(410, "Rencontre close", closed_reason(meeting))
        return public_id, meeting, contact, company

    def referral_page(token: str, meeting: Meeting, company: Company, values: dict[str, str],
                      errors: dict[str, str], status: int = 200) -> HTMLResponse:  # fmt: skip
        return render("referral.html", status, token=token, meeting=meeting_view(meeting),
                      company_name=company.name, values=values, errors=errors)  # fmt: skip

    @app.get("/parrainage/{token}", response_class=HTMLResponse)
    def show_referral(token: str) -> HTMLResponse:
        """Show the form to bring a company of the participant's network; changes nothing."""
        try:
            with Session(engine) as session:
                _, meeting, _contact, company = referrer_of(session, token)
        except _PageError as exc:
            return error_page(exc)
        return referral_page(token, meeting, company, dict.fromkeys(_REFERRAL_FIELDS, ""), {})

    @app.post("/parrainage/{token}", response_class=HTMLResponse)
    async def refer(token: str, request: Request, background: BackgroundTasks) -> HTMLResponse:
        """Record the referred company (linked if already known) and say it will be invited."""
        form = await request.form()
        values = {name: str(form.get(name) or "")[:400] for name in _REFERRAL_FIELDS}
        moment = now()
        try:
            with Session(engine) as session:
                _, meeting, _contact, company = referrer_of(session, token)
            try:
                cleaned = validate_referral(values)
            except ReferralRefused as exc:
                return referral_page(token, meeting, company, values, exc.errors, status=422)
            with writing() as session:
                public_id, meeting_id = claims_of(token, REFERRAL)
                lock_meeting(session, meeting_id)
                _, meeting, contact, company = referrer_of(session, token)
                try:
                    outcome = create_referral(
                        session=session, meeting=meeting, referrer=contact, form=cleaned, now=moment
                    )
                except ReferralRefused as exc:
                    return referral_page(token, meeting, company, values, exc.errors, status=422)
                except AnswerRefused as exc:
                    raise _PageError(409, "Invitation impossible", str(exc)) from exc
                view = {"referred_name": outcome.company.name, "contact_name": cleaned.contact_name,
                        "already": outcome.already_referred, "meeting": meeting_view(meeting),
                        "company_name": company.name}  # fmt: skip
                event = MeetingEvent(
                    name=REFERRAL_CREATED_EVENT, meeting_id=meeting_id, company_id=outcome.company.id,  # type: ignore[arg-type]
                    contact_public_id=public_id, occurred=moment, referral_id=outcome.referral.id,
                )  # fmt: skip
        except _PageError as exc:
            return error_page(exc)
        if not outcome.already_referred:
            background.add_task(_emit_safely, emit, event)
        return render("referral_done.html", **view)
