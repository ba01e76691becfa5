"""Staff pages under ``/equipe/``: sign-in by a one-time e-mailed link, uploading a listing, a company's page.

Sign-in: the link (``STAFF_SIGN_IN`` token: staff id + random nonce, 15 minutes) opens a
confirmation page whose POST uses it; a ``staff_sign_in`` row, unique on the nonce, makes it
single use. The session cookie (``STAFF_SESSION`` token naming the same nonce) is HttpOnly,
SameSite=Strict, Secure when the portal is served over HTTPS; signing out ends the row, so
the cookie is dead everywhere. Every form carries a CSRF token: derived from the nonce once
signed in; before that (the e-mail form, the link's button), a random one doubled in a cookie.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, func, select

from models.companies import actor_label, actors_by_id, is_correction, standing_moves
from models.db import write_transaction
from models.enums import (
    ANSWER_LABELS_FR,
    CHANNEL_LABELS_FR,
    MESSAGE_STATUS_LABELS_FR,
    PARTSTAT_LABELS_FR,
    PARTY_ROLE_LABELS_FR,
    STAGE_LABELS_FR,
    SYNERGY_KIND_LABELS_FR,
    SYNERGY_STATUS_LABELS_FR,
    UPLOAD_STATUS_LABELS_FR,
    VISIT_STATUS_LABELS_FR,
    Answer,
    CallOutcome,
    Channel,
    MessageStatus,
    Partstat,
    PartyRole,
    Stage,
    SynergyKind,
    SynergyStatus,
    UploadStatus,
    VisitStatus,
)
from models.inventory import (
    DIRECTION_LABELS_FR,
    FLOW_ORIGIN_LABELS_FR,
    FREQUENCY_LABELS_FR,
    Direction,
    FlowOrigin,
    FlowSubmission,
    Frequency,
    MaterialFlow,
)
from models.tables import (
    Caller,
    CallTask,
    Company,
    Contact,
    ListingUpload,
    Meeting,
    Message,
    Registration,
    StaffMember,
    StaffSignIn,
    StageChange,
    Synergy,
    SynergyParty,
    Visit,
)
from portal.events import ListingUploadedEvent, emit_listing_uploaded, prefect_api_configured
from portal.pages import PageRefused, Render
from synergie import french
from synergie.calls.lists import OUTCOME_LABELS_FR
from synergie.inventory.codes import format_waste_code
from synergie.listing.reading import STAFF_BANDS, ListingFileError, ListingFilter
from synergie.listing.uploads import import_recorded, record_upload, silence
from synergie.messaging.links import (
    STAFF_CSRF,
    STAFF_SESSION,
    STAFF_SIGN_IN,
    InvalidToken,
    read_token,
    sign_token,
)
from synergie.messaging.sending import SendPolicy, enqueue_prepared, prepared_email, send_prepared
from synergie.messaging.transports import email_backend
from synergie.settings import Settings
from synergie.synergies.lifecycle import AUTHORITY_LABEL

__all__ = ["PREFIX", "SESSION_COOKIE", "staff_router"]

logger = logging.getLogger(__name__)

PREFIX = "/equipe"
SESSION_COOKIE = "synergie_equipe"
_FORM_COOKIE = "synergie_csrf"  # the CSRF token of the forms shown before a session exists
_FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # what secrets.token_urlsafe(24) gives
_UPLOAD_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")
_MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def _sign_in_required() -> PageRefused:
    return PageRefused(
        401,
        "Connexion requise",
        "Cette page est réservée à l'équipe du programme : connectez-vous d'abord.",
        f"Demandez un lien de connexion sur la page {PREFIX}/connexion.",
    )


def _csrf_refused() -> PageRefused:
    return PageRefused(
        403,
        "Formulaire expiré",
        "Ce formulaire n'a pas été reconnu (jeton de sécurité absent ou périmé).",
        "Rechargez la page et recommencez.",
    )


def _bad_link(message: str) -> PageRefused:
    return PageRefused(
        400, "Lien de connexion non valide", message,
        f"Demandez un nouveau lien sur la page {PREFIX}/connexion.",
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FlowLine:
    """A material flow as the company page prints it, every value in French."""

    direction: str
    description: str
    waste: str  # « 15 01 10* (dangereux) », or empty when not a waste
    quantity: str  # « 2,5 t par mois »
    outlet: str
    origin: str


@dataclass(frozen=True, slots=True)
class SynergyLine:
    """A synergy the company is a party to, as the company page prints it."""

    title: str
    kind: str
    status: str
    role: str
    others: str  # the other parties' names, the authority as « la collectivité »


def _actors_named(session: Session, actors: list[str]) -> dict[str, dict[int, str]]:
    """The names of the callers and contacts a history names by id, for ``actor_label``."""
    ids = actors_by_id(actors)
    callers = session.exec(select(Caller.id, Caller.name).where(col(Caller.id).in_(ids["caller"])))
    contacts = session.exec(
        select(Contact.id, Contact.name).where(col(Contact.id).in_(ids["contact"]))
    )
    return {
        "callers": {n: name for n, name in callers if n is not None and name},
        "contacts": {n: name for n, name in contacts if n is not None and name},
    }


def _flow_row(flow: MaterialFlow) -> FlowLine:
    """The flow's line on the company page: direction, waste code, quantity and origin in French."""
    waste = ""
    if flow.waste_code:
        waste = format_waste_code(flow.waste_code, flow.hazardous)
        waste += " (dangereux)" if flow.hazardous else ""
    elif flow.hazardous:
        waste = "dangereux"
    return FlowLine(
        direction=DIRECTION_LABELS_FR[Direction(flow.direction)],
        description=flow.description,
        waste=waste,
        quantity=f"{french.number(flow.quantity, digits=2)} {flow.unit} "
        f"{FREQUENCY_LABELS_FR[Frequency(flow.frequency)]}",
        outlet=str(flow.outlet),
        origin=FLOW_ORIGIN_LABELS_FR[FlowOrigin(flow.origin)],
    )


def _submission_line(
    submission: FlowSubmission | None, when: Callable[[datetime | None], str]
) -> str:
    """Whether the company's last questionnaire sent through the portal was reviewed, in French."""
    if submission is None:
        return ""
    sent = f"Dernier questionnaire reçu le {when(submission.submitted_at)} ({submission.rows} flux)"
    if submission.reviewed_at is None:
        return f"{sent} : à relire."
    return f"{sent}, relu le {when(submission.reviewed_at)} par {submission.reviewed_by or '—'}."


def _synergy_rows(session: Session, company_id: int) -> list[SynergyLine]:
    """The synergies ``company_id`` is a party to, with its role and the other parties: one query."""
    mine, other = sa.orm.aliased(SynergyParty), sa.orm.aliased(SynergyParty)
    rows = session.execute(
        sa.select(Synergy, mine.role, other.is_authority, Company.name)  # type: ignore[call-overload]
        .join(mine, mine.synergy_id == Synergy.id)
        .outerjoin(
            other, sa.and_(col(other.synergy_id) == col(Synergy.id), col(other.id) != col(mine.id))
        )
        .outerjoin(Company, col(Company.id) == other.company_id)
        .where(mine.company_id == company_id)
        .order_by(col(Synergy.id).desc(), other.id)
    ).all()
    found: dict[int, tuple[Synergy, str, list[str]]] = {}
    for synergy, role, is_authority, name in rows:
        _, _, others = found.setdefault(synergy.id, (synergy, role, []))
        if is_authority:
            others.append(AUTHORITY_LABEL)
        elif name is not None:
            others.append(name)
    return [
        SynergyLine(
            title=synergy.title,
            kind=SYNERGY_KIND_LABELS_FR[SynergyKind(synergy.kind)],
            status=SYNERGY_STATUS_LABELS_FR[SynergyStatus(synergy.status)],
            # The column is a plain string; a StrEnum key is found by its value.
            role=PARTY_ROLE_LABELS_FR.get(cast(PartyRole, role), role),
            others=", ".join(others) or "—",
        )
        for synergy, role, others in found.values()
    ]


def staff_router(
    *,
    settings: Settings,
    engine: sa.Engine,
    render: Render,
    now: Callable[[], datetime],
    prefect_api: Callable[[], bool] = prefect_api_configured,
    emit_upload: Callable[[ListingUploadedEvent], bool] = emit_listing_uploaded,
) -> APIRouter:
    """Return the routes under ``/equipe/``; ``prefect_api`` tells whether imports go through Prefect."""
    key, *previous_keys = settings.link_verification_keys
    secure = settings.public_url.lower().startswith("https://")
    uploads = settings.data_dir / "uploads"
    router = APIRouter(prefix=PREFIX)

    def csrf_for(nonce: str) -> str:
        return sign_token(key=key, purpose=STAFF_CSRF, subject=nonce)

    def staff_of(request: Request) -> tuple[StaffMember, str]:
        """The signed-in staff member and the session's nonce, or PageRefused."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        try:
            claims = read_token(
                cookie, key=key, purpose=STAFF_SESSION, now=now(), previous_keys=previous_keys
            )
        except InvalidToken:
            raise _sign_in_required() from None
        with Session(engine) as session:
            row = session.exec(
                select(StaffSignIn).where(col(StaffSignIn.nonce) == (claims.channel or ""))
            ).first()
            member = session.get(StaffMember, int(claims.subject))
        moment = now()
        if (
            row is None or member is None or not member.active or row.staff_id != member.id
            or row.ended_at is not None or row.expires_at <= moment
        ):  # fmt: skip
            raise _sign_in_required()
        return member, row.nonce

    def check_csrf(nonce: str, sent: str) -> None:
        if not sent or not hmac.compare_digest(sent, csrf_for(nonce)):
            logger.warning("staff form refused: CSRF token missing or wrong")
            raise _csrf_refused()

    def page(
        name: str, member: StaffMember, nonce: str, *, status: int = 200, **context: object
    ) -> HTMLResponse:
        return render(
            name, status, staff_name=member.name, csrf=csrf_for(nonce), prefix=PREFIX, **context
        )

    # --- signing in -------------------------------------------------------------------------

    def before_session_form(request: Request, name: str, **context: Any) -> HTMLResponse:
        """A form shown before any session: its CSRF token is also set as a cookie (double submit).

        The browser's token is kept when it has one: a second tab (the sign-in link opened
        while the first form is still on screen) must not make the first form's token stale.
        """
        kept = request.cookies.get(_FORM_COOKIE, "")
        token = kept if _FORM_TOKEN.fullmatch(kept) else secrets.token_urlsafe(24)
        answer = render(name, prefix=PREFIX, csrf=token, **context)
        answer.set_cookie(_FORM_COOKIE, token, httponly=True, secure=secure, samesite="strict",
                          path=PREFIX)  # fmt: skip
        return answer

    def check_before_session_csrf(request: Request, sent: str) -> None:
        expected = request.cookies.get(_FORM_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            logger.warning("sign-in form refused: CSRF token missing or wrong")
            raise _csrf_refused()

    @router.get("/connexion", response_class=HTMLResponse)
    def sign_in_form(request: Request) -> HTMLResponse:
        """Ask for the staff member's e-mail address."""
        return before_session_form(request, "equipe/connexion.html", sent=False)

    @router.post("/connexion", response_class=HTMLResponse)
    def send_sign_in_link(
        request: Request,
        background: BackgroundTasks,
        email: Annotated[str, Form(max_length=320)] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        """E-mail a one-time sign-in link to an active staff member; the same answer for anyone."""
        try:
            check_before_session_csrf(request, csrf)
        except PageRefused as refused:
            return refused.page(render)
        address = email.strip().lower()
        moment = now()
        with write_transaction(engine) as connection:
            member = connection.execute(
                sa.select(StaffMember.id, StaffMember.name, StaffMember.email).where(  # type: ignore[call-overload]
                    func.lower(col(StaffMember.email)) == address, col(StaffMember.active)
                )
            ).first()
            if member is not None and address:
                nonce = secrets.token_urlsafe(18)
                token = sign_token(
                    key=key, purpose=STAFF_SIGN_IN, subject=str(member.id), channel=nonce,
                    expires_at=moment + timedelta(minutes=settings.staff_sign_in_minutes),
                )  # fmt: skip
                link = f"{settings.public_url.rstrip('/')}{PREFIX}/entree/{token}"
                text = bytes(render(
                    "equipe/lien-connexion.txt", staff_name=member.name, link=link,
                    minutes=settings.staff_sign_in_minutes,
                ).body).decode()  # fmt: skip
                enqueue_prepared(
                    connection, step=f"connexion-{nonce}", recipient=f"staff:{member.id}",
                    channel=Channel.EMAIL, to_address=member.email,
                    content=prepared_email(subject=f"Votre lien de connexion – {settings.programme_name}",
                                           text=text, html="", to_name=member.name),
                    domain=settings.mail_from.rpartition("@")[2].strip("> ") or "localhost",
                    now=moment,
                )  # fmt: skip
                background.add_task(send_link_mail, f"connexion-{nonce}")
                logger.info("sign-in link queued for staff %s", member.id)
            else:
                logger.info("sign-in asked for an address that is not an active staff member")
        return render("equipe/connexion.html", prefix=PREFIX, csrf=csrf, sent=True)

    def send_link_mail(step: str) -> None:
        """Send the one sign-in e-mail queued under ``step``, nothing else of the outbox."""
        # Mailings, invitations and reminders leave from their flows (rate limits, triage):
        # the portal's process never sends them.
        try:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
            send_prepared(
                engine=engine, backend=email_backend(settings, password=password),
                channel=Channel.EMAIL, step=step, limit=1,
                policy=SendPolicy.from_settings(settings, actor="portal"), now=now,
            )  # fmt: skip
        except Exception:
            logger.exception("sending the sign-in link failed; it stays in the outbox")

    def sign_in_claims(token: str) -> tuple[int, str]:
        try:
            claims = read_token(
                token, key=key, purpose=STAFF_SIGN_IN, now=now(), previous_keys=previous_keys
            )
        except InvalidToken as exc:
            raise _bad_link(str(exc)) from exc
        return int(claims.subject), claims.channel or ""

    def used(nonce: str) -> bool:
        with Session(engine) as session:
            return (
                session.exec(select(StaffSignIn.id).where(col(StaffSignIn.nonce) == nonce)).first()
                is not None
            )

    _USED = "Ce lien de connexion a déjà servi : chaque lien ne s'utilise qu'une fois."

    @router.get("/entree/{token}", response_class=HTMLResponse)
    def confirm_sign_in(token: str, request: Request) -> HTMLResponse:
        """Show a button that uses the link (a GET changes nothing: mail scanners open links)."""
        try:
            _staff_id, nonce = sign_in_claims(token)
            if used(nonce):
                raise _bad_link(_USED)
        except PageRefused as refused:
            return refused.page(render)
        return before_session_form(request, "equipe/entree.html")

    @router.post("/entree/{token}")
    def sign_in(token: str, request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        """Use the one-time link: record it, open the session, go to the staff home page."""
        try:
            staff_id, nonce = sign_in_claims(token)
            if used(nonce):  # a used or expired link says so first; the insert still decides
                raise _bad_link(_USED)
            check_before_session_csrf(request, csrf)
            moment = now()
            expires = moment + timedelta(hours=settings.staff_session_hours)
            try:
                with write_transaction(engine) as connection:
                    member = connection.execute(
                        sa.select(col(StaffMember.active)).where(col(StaffMember.id) == staff_id)
                    ).scalar()
                    if not member:
                        raise _bad_link("Ce compte n'est plus actif.")
                    connection.execute(
                        sa.insert(StaffSignIn).values(
                            nonce=nonce, staff_id=staff_id, used_at=moment, expires_at=expires
                        )
                    )
            except sa.exc.IntegrityError:
                raise _bad_link(_USED) from None
        except PageRefused as refused:
            return refused.page(render)
        cookie = sign_token(
            key=key, purpose=STAFF_SESSION, subject=str(staff_id), channel=nonce, expires_at=expires
        )
        answer = RedirectResponse(f"{PREFIX}/", status_code=303)
        answer.set_cookie(
            SESSION_COOKIE, cookie, max_age=int((expires - moment).total_seconds()),
            httponly=True, secure=secure, samesite="strict", path=PREFIX,
        )  # fmt: skip
        logger.info("staff %s signed in", staff_id)
        return answer

    @router.post("/deconnexion")
    def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        """End the session everywhere and drop the cookie."""
        try:
            member, nonce = staff_of(request)
            check_csrf(nonce, csrf)
        except PageRefused as refused:
            return refused.page(render)
        with write_transaction(engine) as connection:
            connection.execute(
                sa.update(StaffSignIn).where(col(StaffSignIn.nonce) == nonce).values(ended_at=now())
            )
        answer = render("equipe/au-revoir.html", prefix=PREFIX)
        answer.delete_cookie(
            SESSION_COOKIE, path=PREFIX, secure=secure, httponly=True, samesite="strict"
        )
        logger.info("staff %s signed out", member.id)
        return answer

    # --- pages ------------------------------------------------------------------------------

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, q: str = "") -> HTMLResponse:
        """The staff home: upload a listing, the last uploads, find a company."""
        try:
            member, nonce = staff_of(request)
        except PageRefused as refused:
            return refused.page(render)
        found: list[Company] = []
        if q.strip():
            needle = q.strip().replace(" ", "")
            with Session(engine) as session:
                found = list(session.exec(
                    select(Company)
                    .where(sa.or_(col(Company.siret) == needle,
                                  func.lower(col(Company.name)).contains(q.strip().lower())))
                    .order_by(col(Company.name)).limit(50)
                ))  # fmt: skip
        with Session(engine) as session:
            recent = [
                (upload, french.short_moment(upload.uploaded_at, settings.tz), who,
                 UPLOAD_STATUS_LABELS_FR[UploadStatus(upload.status)])
                for upload, who in session.exec(
                    select(ListingUpload, StaffMember.name)
                    .join(StaffMember, col(StaffMember.id) == col(ListingUpload.staff_id))
                    .order_by(col(ListingUpload.uploaded_at).desc(), col(ListingUpload.id).desc())
                    .limit(10)
                )
            ]  # fmt: skip
        return page("equipe/accueil.html", member, nonce, q=q, found=found, bands=STAFF_BANDS,
                    recent=recent)  # fmt: skip

    @router.get("/import", response_class=HTMLResponse)
    def upload_form(request: Request) -> HTMLResponse:
        """The listing upload form, with the filters of ``synergie import``."""
        try:
            member, nonce = staff_of(request)
        except PageRefused as refused:
            return refused.page(render)
        return page("equipe/import.html", member, nonce, bands=STAFF_BANDS)

    @router.post("/import")
    def upload(
        request: Request,
        fichier: Annotated[UploadFile, File()],
        csrf: Annotated[str, Form()] = "",
        communes: Annotated[str, Form()] = "",
        naf: Annotated[str, Form()] = "",
        tranche: Annotated[str, Form()] = "",
        fermes: Annotated[str, Form()] = "",
        essai: Annotated[str, Form()] = "",
    ) -> Response:
        """Keep and record the file under the data directory, import it (here, or through
        Prefect), and send staff to the upload's page."""
        try:
            member, nonce = staff_of(request)
            check_csrf(nonce, csrf)
            name = Path(fichier.filename or "liste.csv").name
            if not name.lower().endswith(_UPLOAD_SUFFIXES):
                raise PageRefused(400, "Format non pris en charge",
                                  f"« {name} » n'est ni un fichier CSV ni un classeur Excel .xlsx.",
                                  "Enregistrez la liste au format .xlsx ou « CSV UTF-8 ».")  # fmt: skip
            try:
                listing_filter = ListingFilter(
                    communes=frozenset(c for c in re.split(r"[\s,;]+", communes) if c),
                    naf_prefixes=tuple(n for n in re.split(r"[\s,;]+", naf) if n),
                    min_staff_band=tranche or None,
                    include_closed=bool(fermes),
                )
            except ValueError as exc:
                raise PageRefused(400, "Filtre invalide", str(exc)) from exc
            moment = now()
            uploads.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem)[:80] or "liste"
            kept = (
                uploads
                / f"{moment.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}-{stem}{Path(name).suffix.lower()}"
            )
            size = 0
            with kept.open("wb") as out:
                while chunk := fichier.file.read(1024 * 1024):
                    size += len(chunk)
                    if size > _MAX_UPLOAD_BYTES:
                        out.close()
                        kept.unlink()
                        raise PageRefused(413, "Fichier trop gros", "Le fichier dépasse 200 Mo.")
                    out.write(chunk)
            dry_run = bool(essai)
            logger.info("staff %s uploaded %s (%d bytes)", member.id, kept.name, size)
            upload_id = record_upload(engine, staff_id=member.id, file_name=name,  # type: ignore[arg-type]
                                      stored_path=kept, dry_run=dry_run, now=moment)  # fmt: skip
        except PageRefused as refused:
            return refused.page(render)
        result = RedirectResponse(f"{PREFIX}/imports/{upload_id}", status_code=303)
        if prefect_api():
            event = ListingUploadedEvent(
                path=str(kept.resolve()), staff_id=member.id, occurred=moment,  # type: ignore[arg-type]
                communes=tuple(sorted(listing_filter.communes)),
                naf_prefixes=listing_filter.naf_prefixes, min_staff_band=tranche,
                include_closed=listing_filter.include_closed, dry_run=dry_run,
            )  # fmt: skip
            if emit_upload(event):
                return result
            logger.warning("upload event not taken: importing %s in the portal", kept.name)
        try:
            import_recorded(
                engine=engine, path=kept, listing_filter=listing_filter,
                rejects_dir=settings.reports_dir, now=moment, dry_run=dry_run,
            )  # fmt: skip
        except ListingFileError:
            pass  # recorded on the upload, in French, for its page
        except Exception:
            logger.exception("importing upload %s failed", upload_id)
        return result

    def upload_of(request: Request, upload_id: int) -> tuple[StaffMember, str, ListingUpload]:
        member, nonce = staff_of(request)
        with Session(engine) as session:
            upload = session.get(ListingUpload, upload_id)
        if upload is None:
            raise PageRefused(404, "Importation introuvable", "Aucune importation n'a ce numéro.")
        return member, nonce, upload

    def rejects_file_of(upload: ListingUpload) -> Path | None:
        """The upload's rejects file, only if it is a file under the data directory."""
        if not upload.rejects_path:
            return None
        path = Path(upload.rejects_path).resolve()
        if not path.is_relative_to(settings.data_dir.resolve()) or not path.is_file():
            return None
        return path

    @router.get("/imports/{upload_id}", response_class=HTMLResponse)
    def upload_result(request: Request, upload_id: int) -> HTMLResponse:
        """An upload's import: « en cours » (the page refreshes itself), then its result."""
        try:
            member, nonce, upload = upload_of(request, upload_id)
        except PageRefused as refused:
            return refused.page(render)
        status = UploadStatus(upload.status)
        # Silent too long: no worker took it yet, or the one running it died (the row cannot
        # say so itself: see synergie.listing.uploads).
        quiet = silence(upload, now())
        stale = quiet > timedelta(seconds=settings.upload_stale_seconds)
        stalled = stale and status == UploadStatus.RUNNING
        return page(
            "equipe/import-bilan.html", member, nonce, upload=upload,
            pending=status in (UploadStatus.QUEUED, UploadStatus.RUNNING) and not stalled,
            stalled=stalled, unclaimed=stale and status == UploadStatus.QUEUED,
            quiet_for=french.duration(quiet),
            status_label=UPLOAD_STATUS_LABELS_FR[status],
            uploaded=french.short_moment(upload.uploaded_at, settings.tz),
            rejects=rejects_file_of(upload) is not None,
            # The reason names the file as staff named it, not as it is kept.
            error=(upload.error or "").replace(Path(upload.stored_path).name, upload.file_name),
        )  # fmt: skip

    @router.get("/imports/{upload_id}/rejets")
    def rejects_file(request: Request, upload_id: int) -> Response:
        """Download an upload's rejects file (its path comes from the database, never the request)."""
        try:
            _member, _nonce, upload = upload_of(request, upload_id)
            path = rejects_file_of(upload)
            if path is None:
                raise PageRefused(
                    404, "Fichier introuvable", "Cette importation n'a pas de fichier des rejets."
                )
        except PageRefused as refused:
            return refused.page(render)
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=path.name,
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    @router.get("/entreprise/{company_id}", response_class=HTMLResponse)
    def company_page(request: Request, company_id: int) -> HTMLResponse:
        """A company's file: stage history, messages, calls, visits, meetings, flows, synergies."""
        try:
            member, nonce = staff_of(request)
            with Session(engine) as session:
                company = session.get(Company, company_id)
                if company is None:
                    raise PageRefused(
                        404, "Entreprise introuvable", "Aucune entreprise n'a ce numéro."
                    )
                tz = settings.tz

                def when(moment: datetime | None) -> str:
                    return french.short_moment(moment, tz) if moment else "—"

                history = session.exec(
                    select(StageChange)
                    .where(col(StageChange.company_id) == company_id)
                    .order_by(col(StageChange.at), col(StageChange.id))
                ).all()
                standing = {c.id for c in standing_moves(history)}
                named = _actors_named(session, [c.actor for c in history])
                context: dict[str, Any] = {
                    "company": company,
                    "stage_label": STAGE_LABELS_FR[Stage(company.stage)],
                    "contacts": list(session.exec(select(Contact).where(col(Contact.company_id) == company_id).order_by(col(Contact.id)))),
                    # Every change, corrections included (history is append-only); a move a
                    # correction took back is marked as such.
                    "changes": [
                        (when(c.at), STAGE_LABELS_FR[Stage(c.from_stage)], STAGE_LABELS_FR[Stage(c.to_stage)],
                         c, not is_correction(c) and c.id not in standing, actor_label(c.actor, **named))
                        for c in history
                    ],
                    "messages": [
                        (when(m.created_at), m.step, CHANNEL_LABELS_FR[Channel(m.channel)],
                         MESSAGE_STATUS_LABELS_FR[MessageStatus(m.status)],
                         when(m.sent_at) if m.status == MessageStatus.SENT else "—")
                        for m in session.exec(select(Message).where(col(Message.company_id) == company_id).order_by(col(Message.created_at), col(Message.id)))
                    ],
                    "calls": [(when(t.logged_at), OUTCOME_LABELS_FR[CallOutcome(t.outcome)] if t.outcome else "à faire", t) for t in session.exec(select(CallTask).where(col(CallTask.company_id) == company_id).order_by(col(CallTask.id)))],
                    "visits": [
                        (when(v.starts_at), VISIT_STATUS_LABELS_FR[VisitStatus(v.status)],
                         PARTSTAT_LABELS_FR[Partstat(v.partstat)])
                        for v in session.exec(select(Visit).where(col(Visit.company_id) == company_id).order_by(col(Visit.starts_at)))
                    ],
                    "meetings": [
                        (when(m.starts_at), m.title, ANSWER_LABELS_FR[Answer(r.status)])
                        for r, m in session.exec(
                            select(Registration, Meeting)
                            .join(Meeting, col(Meeting.id) == col(Registration.meeting_id))
                            .where(col(Registration.company_id) == company_id)
                            .order_by(col(Meeting.starts_at))
                        )
                    ],
                    "flows": [_flow_row(f) for f in session.exec(
                        select(MaterialFlow).where(col(MaterialFlow.company_id) == company_id)
                        .order_by(col(MaterialFlow.direction), col(MaterialFlow.id)))],
                    "submission": _submission_line(session.exec(
                        select(FlowSubmission).where(col(FlowSubmission.company_id) == company_id)
                        .order_by(col(FlowSubmission.submitted_at).desc(), col(FlowSubmission.id).desc())
                    ).first(), when),
                    "synergies": _synergy_rows(session, company_id),
                }  # fmt: skip
                return page("equipe/entreprise.html", member, nonce, **context)
        except PageRefused as refused:
            return refused.page(render)

    return router
