"""The portal's FastAPI app: signed unsubscribe links, their confirmation page and RFC 8058 one-click."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
import sqlalchemy as sa
from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.db import is_lock_timeout, write_transaction
from models.enums import Channel
from models.tables import Company, Contact, OptOut
from portal.events import (
    CallLoggedEvent,
    MeetingEvent,
    OptOutEvent,
    emit_call_logged,
    emit_meeting_event,
    emit_opt_out,
)
from portal.inventory import inventory_router
from portal.meetings import add_meeting_pages
from portal.staff import staff_router
from portal.surveys import surveys_router
from portal.volunteers import volunteers_router
from synergie import french
from synergie.messaging.links import UNSUBSCRIBE, InvalidToken, read_token
from synergie.messaging.optout_journal import (
    AppliedOptOut,
    OptOutJournal,
    OptOutRequest,
    Scope,
    apply_opt_out_requests,
    apply_pending_opt_outs,
    journal_for,
)
from synergie.messaging.optouts import suppression_of
from synergie.settings import Settings

__all__ = ["TEMPLATES_DIR", "create_app"]

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# Every page may carry a token in its URL: keep it out of caches, search engines and Referer
# headers, and let the page load nothing but itself.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_SCOPES: tuple[Scope, ...] = ("channel", "all")
# A POST waits this long at most for the database before answering from the journal alone:
# the request is on disk already, and a mail provider's one-click does not wait for long.
QUICK_APPLY_SECONDS = 0.5
# The background applier waits longer and longer between tries, up to this, for this long
# in all; after that the next run that claims messages applies the journal.
RETRY_DELAY_MAX_SECONDS = 30.0
RETRY_FOR_SECONDS = 15 * 60.0


@dataclass(frozen=True, slots=True)
class ChannelWording:
    """How a page speaks of a channel, in French."""

    concerned: str
    what: str
    at_this: str


_WORDING: dict[Channel, ChannelWording] = {
    Channel.EMAIL: ChannelWording("Adresse e-mail concernée", "d'e-mails", "à cette adresse"),
    Channel.SMS: ChannelWording("Numéro concerné", "de SMS", "à ce numéro"),
    Channel.PHONE: ChannelWording("Numéro concerné", "d'appels", "à ce numéro"),
}


class PortalError(Exception):
    """A request the portal answers with a French error page and no change."""

    def __init__(self, status: int, title: str, message: str, hint: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.hint = hint


_UNSUBSCRIBE_HINT = (
    "Pour vous désinscrire, répondez simplement au message reçu ou écrivez-nous à l'adresse "
    "ci-dessous."
)


def _invalid_link(message: str) -> PortalError:
    return PortalError(400, "Lien non valide", message, _UNSUBSCRIBE_HINT)


def _unknown_contact() -> PortalError:
    return PortalError(
        404,
        "Destinataire introuvable",
        "Ce lien est authentique, mais la personne à qui il était destiné ne figure plus dans "
        "nos fichiers : aucun message ne lui sera donc envoyé.",
        "Si vous recevez encore nos messages, écrivez-nous à l'adresse ci-dessous.",
    )


def _french_datetime(moment: datetime, settings: Settings) -> str:
    """``2 novembre 2026 à 10 h 30`` in the programme's time zone."""
    return french.moment(moment, settings.tz, weekday=False)


def _address(contact: Contact, channel: Channel) -> str:
    """The e-mail address or the phone number (French national format) the channel reaches."""
    if channel == Channel.EMAIL:
        return contact.email or "(adresse non renseignée)"
    if not contact.phone:
        return "(numéro non renseigné)"
    try:
        number = phonenumbers.parse(contact.phone, "FR")
    except phonenumbers.NumberParseException:
        return contact.phone
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 33
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def _emit_safely(emit: Callable[[OptOutEvent], None], event: OptOutEvent) -> None:
    """Run the event emitter after the answer left; a failure is logged, never raised."""
    try:
        emit(event)
    except Exception:
        logger.exception(
            "opt-out event for contact %s could not be emitted", event.contact_public_id
        )


def _event_for(applied: AppliedOptOut) -> OptOutEvent:
    request = applied.request
    return OptOutEvent(
        contact_public_id=request.public_id,
        company_id=applied.company_id,  # type: ignore[arg-type]
        channels=applied.channels,
        source=request.source,
        occurred=request.at,
        scope=request.scope,
    )


class JournalApplier:
    """Applies the opt-out journal in a background thread until the database takes it.

    ``kick`` starts the thread unless it runs already; ``wait`` is for tests and shutdown.
    A daemon thread and not FastAPI's BackgroundTasks: those run before the response is
    complete as far as an ASGI test client (and some servers' keep-alive) is concerned.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        journal: OptOutJournal,
        emit: Callable[[OptOutEvent], None],
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.emit = emit
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="opt-out-journal", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; return whether it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        delay, waited = 0.25, 0.0
        while waited < RETRY_FOR_SECONDS and not self._stop.is_set():
            try:
                applied = apply_pending_opt_outs(
                    engine=self.engine, journal=self.journal, lock_timeout=5.0
                )
            except Exception as exc:
                level = logging.INFO if is_lock_timeout(exc) else logging.ERROR
                logger.log(level, "opt-out journal not applied yet (%s), trying again", exc)
            else:
                for each in applied:
                    if each.changed:
                        _emit_safely(self.emit, _event_for(each))
                if not self.journal.has_pending():
                    return
            if self._sleep(delay):
                return
            waited += delay
            delay = min(delay * 2, RETRY_DELAY_MAX_SECONDS)
        logger.warning("opt-out journal still pending: the next run that sends will apply it")


def _templates(settings: Settings) -> Environment:
    """A Jinja environment reading staff overrides (SYNERGIE_TEMPLATES_DIR) first, then ours."""
    loaders = [FileSystemLoader(settings.templates_dir)] if settings.templates_dir else []
    loaders.append(FileSystemLoader(TEMPLATES_DIR))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,
    )


def create_app(
    *,
    settings: Settings,
    engine: sa.Engine,
    emit: Callable[[OptOutEvent], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    journal: OptOutJournal | None = None,
    emit_meeting: Callable[[MeetingEvent], None] | None = None,
    emit_call: Callable[[CallLoggedEvent], None] = emit_call_logged,
    **staff_options: Any,
) -> FastAPI:
    """Return the portal app on ``engine``; ``emit`` and ``emit_meeting`` receive its events (default: Prefect).

    Opt-outs are written to ``journal`` (by default the one in the data dir, which the
    flows apply too) before anything else; ``app.state.journal_applier`` applies it in
    the background when the database was busy.
    """
    # Read now: a missing or short production key fails at start-up, not on the first click.
    key, *previous_keys = settings.link_verification_keys
    emitter = emit if emit is not None else emit_opt_out
    now = clock if clock is not None else (lambda: datetime.now(UTC))
    journal = journal if journal is not None else journal_for(settings)
    applier = JournalApplier(engine=engine, journal=journal, emit=emitter)
    pages = _templates(settings)
    common = {
        "programme_name": settings.programme_name,
        "authority_name": settings.authority_name,
        "officer_email": settings.officer_email,
        "officer_phone": settings.officer_phone,
    }

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = pages.get_template(f"portal/{name}").render(**common, **context)
        return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)

    def claims_of(token: str) -> tuple[str, Channel]:
        try:
            claims = read_token(
                token, key=key, purpose=UNSUBSCRIBE, now=now(), previous_keys=previous_keys
            )
        except InvalidToken as exc:
            # Never log the token: it would let whoever reads the logs unsubscribe people.
            logger.info("refused an invalid unsubscribe link")
            raise _invalid_link(str(exc)) from exc
        try:
            return claims.subject, Channel(claims.channel or "")
        except ValueError as exc:
            raise _invalid_link(str(InvalidToken())) from exc

    def contact_of(session: Session, public_id: str) -> tuple[Contact, Company]:
        row = session.exec(
            select(Contact, Company)
            .join(Company, Company.id == Contact.company_id)  # type: ignore[arg-type]
            .where(Contact.public_id == public_id)
        ).first()
        if row is None:
            logger.info("unsubscribe link for unknown contact %s", public_id)
            raise _unknown_contact()
        return row[0], row[1]

    def opt_out_row(session: Session, contact: Contact, channel: Channel) -> OptOut | None:
        return session.exec(
            select(OptOut).where(OptOut.contact_id == contact.id, OptOut.channel == channel)
        ).first()

    def record(request: OptOutRequest) -> list[AppliedOptOut] | None:
        """Journal ``request``, then apply the journal if the database answers quickly.

        Returns what was applied, or None when the database is busy: the request is then
        safe on disk and the background applier takes over.
        """
        try:
            journal.append(request)
        except OSError:
            # No journal (disk full, permissions): the database alone, waiting as long as needed.
            logger.exception("opt-out journal not writable: recording straight to the database")
            with write_transaction(engine) as connection:
                return apply_opt_out_requests(connection, [request])
        try:
            return apply_pending_opt_outs(
                engine=engine, journal=journal, lock_timeout=QUICK_APPLY_SECONDS
            )
        except sa.exc.OperationalError as exc:
            if not is_lock_timeout(exc):
                raise
            logger.warning(
                "database busy: opt-out of %s journalled, applied later", request.public_id
            )
            applier.kick()
            return None

    @contextmanager
    def writing() -> Iterator[Session]:
        # write_transaction: on SQLite the first write waits for the lock (BEGIN IMMEDIATE)
        # rather than failing when another request wrote since we read.
        with write_transaction(engine) as connection:
            session = Session(bind=connection, expire_on_commit=False)
            try:
                yield session
                session.flush()
            finally:
                session.close()

    app = FastAPI(
        title="Synergie – portail",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # a public site: no API documentation to browse
    )
    app.state.journal_applier = applier
    app.router.on_shutdown.append(applier.stop)

    app.include_router(volunteers_router(settings=settings, engine=engine, render=render, now=now, emit=emit_call))  # fmt: skip
    app.include_router(staff_router(settings=settings, engine=engine, render=render, now=now, **staff_options))  # fmt: skip

    @app.exception_handler(PortalError)
    def portal_error(_request: Request, exc: PortalError) -> HTMLResponse:
        return render("error.html", exc.status, title=exc.title, message=exc.message, hint=exc.hint)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            title, message = "Page introuvable", "Cette adresse ne correspond à aucune page."
        elif exc.status_code == 405:
            title, message = "Action impossible", "Cette page ne s'utilise pas ainsi."
        else:
            title, message = "Requête refusée", "Votre demande n'a pas pu être traitée."
        return render("error.html", exc.status_code, title=title, message=message, hint="")

    @app.exception_handler(RequestValidationError)
    def validation_error(_request: Request, _exc: RequestValidationError) -> HTMLResponse:
        return render(
            "error.html", 400, title="Requête incomplète",
            message="Le formulaire reçu est incomplet ou mal formé.", hint=_UNSUBSCRIBE_HINT,
        )  # fmt: skip

    @app.exception_handler(Exception)
    def unexpected_error(_request: Request, exc: Exception) -> HTMLResponse:
        # The traceback, not the request: the URL holds the token (no database value does).
        # exc_info from the exception itself: Starlette calls this handler outside the except
        # block (in a worker thread), where logger.exception logged "NoneType: None".
        logger.error("portal request failed", exc_info=(type(exc), exc, exc.__traceback__))
        return render(
            "error.html", 500, title="Service momentanément indisponible",
            message="Votre demande n'a pas pu être enregistrée.",
            hint="Réessayez dans quelques minutes, ou écrivez-nous à l'adresse ci-dessous.",
        )  # fmt: skip

    @app.get("/sante")
    def health() -> JSONResponse:
        """Answer that the portal is up (for load balancers and the tests)."""
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @app.get("/desinscription/{token}", response_class=HTMLResponse)
    def confirm_unsubscribe(token: str) -> HTMLResponse:
        """Show the confirmation page; a GET never changes anything (mail scanners prefetch links)."""
        public_id, channel = claims_of(token)
        with Session(engine) as session:
            contact, company = contact_of(session, public_id)
            # The address may have been suppressed through another row (a re-import, staff).
            address = contact.email if channel == Channel.EMAIL else contact.phone
            existing = opt_out_row(session, contact, channel) or suppression_of(
                session.connection(), address=address, channel=channel
            )
        return render(
            "confirm.html",
            company_name=company.name,
            address=_address(contact, channel),
            channel=_WORDING[channel],
            already_since=_french_datetime(existing.at, settings) if existing else "",
        )

    @app.post("/desinscription/{token}", response_class=HTMLResponse)
    def unsubscribe(
        token: str,
        background: BackgroundTasks,
        scope: Annotated[str, Form()] = "channel",
        one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
    ) -> HTMLResponse:
        """Record the opt-out (the form, or an RFC 8058 one-click POST) and confirm it.

        The request is journalled (fsync'd) first; the answer never waits more than
        QUICK_APPLY_SECONDS for a busy database.
        """
        public_id, channel = claims_of(token)
        if scope not in _SCOPES:
            raise _invalid_link("Le choix transmis par le formulaire est inconnu.")
        source = "one-click" if one_click == "One-Click" else "portal"
        moment = now()
        request = OptOutRequest.new(
            public_id=public_id,
            channel=channel,
            scope=scope,
            source=source,
            at=moment,  # type: ignore[arg-type]
        )
        applied = record(request)
        if applied is None:
            logger.info(
                "unsubscribe: contact %s, channel %s, scope %s, source %s, journalled",
                public_id, channel, scope, source,
            )  # fmt: skip
            return render(
                "received.html", scope=scope, channel=_WORDING[channel],
                recorded_at=_french_datetime(moment, settings),
            )  # fmt: skip
        changed = False
        for each in applied:
            if each.changed:
                # After the commit, and after the answer: a slow or failing Prefect API must
                # neither delay the person nor undo what they asked.
                background.add_task(_emit_safely, emitter, _event_for(each))
            changed = changed or (each.request.id == request.id and each.changed)
        with Session(engine) as session:
            contact, company = contact_of(session, public_id)
            recorded = opt_out_row(session, contact, channel)
        logger.info(
            "unsubscribe: contact %s, channel %s, scope %s, source %s, %s",
            public_id, channel, scope, source, "recorded" if changed else "already recorded",
        )  # fmt: skip
        return render(
            "done.html",
            scope=scope,
            company_name=company.name,
            address=_address(contact, channel),
            channel=_WORDING[channel],
            recorded_at=_french_datetime(recorded.at if recorded else moment, settings),
        )

    add_meeting_pages(
        app, settings=settings, engine=engine, render=render, writing=writing, now=now,
        emit=emit_meeting if emit_meeting is not None else emit_meeting_event,
    )  # fmt: skip
    app.include_router(inventory_router(settings=settings, engine=engine, render=render, now=now))
    app.include_router(surveys_router(settings=settings, engine=engine, render=render, now=now))
    return app
