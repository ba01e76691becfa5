"""Staff pages: the one-time sign-in link from the outbox, sessions, CSRF, uploading a listing, a company's page."""

from __future__ import annotations

import email
import email.policy
import html
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from httpx import Response
from sqlmodel import Session, select

from models import (
    Answer,
    Caller,
    CallOutcome,
    Channel,
    Company,
    ListingUpload,
    Meeting,
    Message,
    MessageStatus,
    Registration,
    StaffMember,
    StaffSignIn,
    Stage,
    StageChange,
    Synergy,
    SynergyKind,
    SynergyParty,
    SynergyStatus,
    UploadStatus,
    Visit,
)
from models.db import write_transaction
from models.inventory import (
    Direction,
    FlowOrigin,
    FlowSubmission,
    Frequency,
    MaterialFlow,
    Outlet,
    Unit,
)
from portal.app import create_app
from portal.events import ListingUploadedEvent, listing_uploaded_event_fields
from portal.staff import SESSION_COOKIE
from synergie import french
from synergie.calls.outcomes import correct_call, log_call
from synergie.messaging.sending import enqueue_prepared, prepared_email
from synergie.settings import Settings
from tests.factories import make_company, make_contact
from tests.portal.conftest import Clock

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

LISTING = (
    "siret;raison_sociale;code_commune;code_postal;commune;courriel\n"
    "73282932000074;Tonnellerie Meunier;21295;21700;Nuits-Saint-Georges;contact@meunier.example\n"
    "12345678900000;Siret faux;21295;21700;Nuits-Saint-Georges;a@b.example\n"
    "35600000000048;Scierie Vallet;21295;21700;Nuits-Saint-Georges;scierie@vallet.example\n"
)


@dataclass
class Office:
    engine: sa.Engine
    settings: Settings
    client: TestClient
    clock: Clock
    prefect: list[bool] = field(default_factory=lambda: [False])
    uploads: list[ListingUploadedEvent] = field(default_factory=list)

    read: set[Path] = field(default_factory=set)

    def sign_in_link(self, *, timeout: float = 30) -> str:
        """The path of the sign-in link in the next e-mail of the file outbox, waited for.

        A real server sends it after its answer (a background task): poll until it is there.
        """
        deadline = time.monotonic() + timeout
        while not (mails := sorted(set(self.settings.outbox_dir.rglob("*.eml")) - self.read)):
            assert time.monotonic() < deadline, f"no new e-mail in the outbox after {timeout} s"
            time.sleep(0.05)
        assert len(mails) == 1, f"one sign-in e-mail expected, found {mails}"
        self.read.add(mails[0])
        message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        return re.search(r"https?://[^/\s]+(/equipe/entree/\S+)", body).group(1)  # type: ignore[union-attr]

    def ask_link(self, address: str = "claire@cc-gevrey-nuits.example") -> None:
        form = self.client.get("/equipe/connexion")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = self.client.post("/equipe/connexion", data={"email": address, "csrf": csrf})
        assert answer.status_code == 200 and "lien de connexion vient" in answer.text

    def use_link(self, path: str) -> Response:
        """Open the sign-in link and press its button, as staff do."""
        page = self.client.get(path)
        assert "Me connecter" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        return self.client.post(path, data={"csrf": csrf}, follow_redirects=False)

    def sign_in(self) -> str:
        self.ask_link()
        answer = self.use_link(self.sign_in_link())
        assert answer.status_code == 303
        home = self.client.get("/equipe/")
        assert home.status_code == 200
        return re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]

    def sign_ins(self) -> int:
        with Session(self.engine) as session:
            return len(session.exec(select(StaffSignIn)).all())


@pytest.fixture
def office(engine: sa.Engine, settings: Settings) -> Iterator[Office]:
    with Session(engine) as session:
        session.add(StaffMember(name="Claire Martin", email="Claire@cc-gevrey-nuits.example"))
        session.commit()
    clock = Clock()
    office = Office(engine, settings, None, clock)  # type: ignore[arg-type]

    def take(event: ListingUploadedEvent) -> bool:
        office.uploads.append(event)
        return True

    app = create_app(settings=settings, engine=engine, emit=lambda e: None, clock=clock,
                     prefect_api=lambda: office.prefect[0], emit_upload=take)  # fmt: skip
    with TestClient(app) as client:
        office.client = client
        yield office


def test_sign_in_by_the_emailed_link_opens_a_strict_session(office: Office) -> None:
    office.ask_link()
    path = office.sign_in_link()
    answer = office.use_link(path)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/equipe" in cookie
    assert "Secure" not in cookie  # served over plain HTTP in tests
    assert "Claire Martin" in office.client.get("/equipe/").text
    # The link served once: a second use is refused, the session count unchanged.
    office.client.cookies.clear()
    assert "déjà servi" in office.client.get(path).text
    again = office.client.post(path, data={"csrf": "x"}, follow_redirects=False)
    assert again.status_code == 400 and "déjà servi" in again.text
    assert office.sign_ins() == 1


def test_the_sign_in_button_without_its_csrf_token_opens_nothing(office: Office) -> None:
    office.ask_link()
    path = office.sign_in_link()
    assert "Me connecter" in office.client.get(path).text  # sets the form's cookie
    for data in ({}, {"csrf": "pas-le-bon"}):
        answer = office.client.post(path, data=data, follow_redirects=False)
        assert answer.status_code == 403 and "Formulaire expiré" in answer.text
    assert office.sign_ins() == 0 and SESSION_COOKIE not in office.client.cookies
    assert office.use_link(path).status_code == 303  # the link itself is still good


def test_a_second_tab_does_not_make_the_first_sign_in_form_stale(office: Office) -> None:
    def token(page: Response) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    first = token(office.client.get("/equipe/connexion"))
    second = token(office.client.get("/equipe/connexion"))  # another tab, same browser
    assert first == second
    answer = office.client.post(
        "/equipe/connexion", data={"email": "claire@cc-gevrey-nuits.example", "csrf": first}
    )
    assert answer.status_code == 200 and "lien de connexion vient" in answer.text
    # A cookie that is not one of ours is replaced, never echoed into the page.
    office.client.cookies.set("synergie_csrf", "<script>", path="/equipe")
    fresh = token(office.client.get("/equipe/connexion"))
    assert fresh != "<script>" and re.fullmatch(r"[A-Za-z0-9_-]{32}", fresh)


def test_the_portal_sends_the_sign_in_mail_and_nothing_else_of_the_outbox(office: Office) -> None:
    # A prepared e-mail of a flow (a visit invitation) waits in the outbox, due now.
    with write_transaction(office.engine) as connection:
        enqueue_prepared(
            connection, step="invitation-visite", recipient="contact:1", channel=Channel.EMAIL,
            to_address="dirigeant@meunier.example", domain="example.org", now=office.clock(),
            content=prepared_email(subject="Visite", text="Bonjour", html=""),
        )  # fmt: skip
    office.ask_link()
    assert "/equipe/entree/" in office.sign_in_link()
    assert len(list(office.settings.outbox_dir.rglob("*.eml"))) == 1
    with Session(office.engine) as session:
        rows = {m.step: m.status for m in session.exec(select(Message))}
    assert rows.pop("invitation-visite") == MessageStatus.QUEUED  # left to its flow
    assert list(rows.values()) == [MessageStatus.SENT]


def test_unknown_address_gets_the_same_answer_and_no_mail(office: Office) -> None:
    office.ask_link("intrus@example.org")
    assert list(office.settings.outbox_dir.rglob("*.eml")) == []


def test_an_expired_link_is_refused(office: Office) -> None:
    office.ask_link()
    path = office.sign_in_link()
    office.clock.now += timedelta(minutes=office.settings.staff_sign_in_minutes, seconds=1)
    answer = office.client.post(path, data={"csrf": "x"}, follow_redirects=False)
    assert answer.status_code == 400 and "expiré" in answer.text and "a été modifié" in answer.text
    assert office.sign_ins() == 0 and SESSION_COOKIE not in office.client.cookies


def test_staff_pages_need_a_session_and_sessions_expire(office: Office) -> None:
    for path in ("/equipe/", "/equipe/import", "/equipe/entreprise/1"):
        answer = office.client.get(path)
        assert answer.status_code == 401 and "Connexion requise" in answer.text
    office.sign_in()
    office.clock.now += timedelta(hours=office.settings.staff_session_hours, seconds=1)
    assert office.client.get("/equipe/").status_code == 401


def test_sign_out_ends_the_session_even_for_a_kept_cookie(office: Office) -> None:
    csrf = office.sign_in()
    kept = office.client.cookies[SESSION_COOKIE]
    assert office.client.post("/equipe/deconnexion", data={"csrf": csrf}).status_code == 200
    office.client.cookies.set(SESSION_COOKIE, kept, path="/equipe")
    assert office.client.get("/equipe/").status_code == 401


def test_a_form_without_its_csrf_token_changes_nothing(office: Office) -> None:
    office.sign_in()
    answer = office.client.post(
        "/equipe/import", files={"fichier": ("liste.csv", LISTING.encode())}
    )
    assert answer.status_code == 403 and "Formulaire expiré" in answer.text
    answer = office.client.post("/equipe/deconnexion", data={"csrf": "v1.faux.faux"})
    assert answer.status_code == 403
    with Session(office.engine) as session:
        assert session.exec(select(Company)).all() == []
    assert office.client.get("/equipe/").status_code == 200  # still signed in


def test_upload_imports_in_process_and_offers_the_rejects(office: Office) -> None:
    csrf = office.sign_in()
    answer = office.client.post("/equipe/import", data={"csrf": csrf},
                                files={"fichier": ("liste.csv", LISTING.encode())})  # fmt: skip
    assert answer.status_code == 200 and "Bilan de l" in answer.text
    assert re.search(r"/equipe/imports/\d+\Z", str(answer.url))
    assert 'http-equiv="refresh"' not in answer.text  # done: no more refreshing
    assert "SIRET invalide" in answer.text  # the rejected row's reason, on the page
    link = re.search(r'href="(/equipe/imports/\d+/rejets)"', answer.text).group(1)  # type: ignore[union-attr]
    rejects = office.client.get(link)
    assert rejects.status_code == 200 and "Siret faux" in rejects.text
    with Session(office.engine) as session:
        names = sorted(c.name for c in session.exec(select(Company)))
        upload = session.exec(select(ListingUpload)).one()
    assert names == ["Scierie Vallet", "Tonnellerie Meunier"]
    assert (upload.status, upload.created, upload.rejected) == (UploadStatus.DONE, 2, 1)
    kept = list((office.settings.data_dir / "uploads").iterdir())
    assert len(kept) == 1 and kept[0].read_text() == LISTING
    assert upload.stored_path == str(kept[0].resolve())
    # The staff home lists it, with its result.
    home = office.client.get("/equipe/").text
    assert "Dernières listes déposées" in home and f'href="/equipe/imports/{upload.id}"' in home
    assert "2 nouvelles" in home and "Claire Martin" in home
    # Staff only: without the session neither the page nor the file.
    cookies = dict(office.client.cookies)
    office.client.cookies.clear()
    assert office.client.get(link).status_code == 401
    assert office.client.get(f"/equipe/imports/{upload.id}").status_code == 401
    for name, value in cookies.items():
        office.client.cookies.set(name, value, path="/equipe")
    assert office.client.get(link).status_code == 200


def test_the_rejects_file_is_served_only_from_under_the_data_directory(
    office: Office, tmp_path: Path
) -> None:
    csrf = office.sign_in()
    office.client.post("/equipe/import", data={"csrf": csrf},
                       files={"fichier": ("liste.csv", LISTING.encode())})  # fmt: skip
    outside = tmp_path / "ailleurs.csv"
    outside.write_text("secret\n")
    with write_transaction(office.engine) as connection:
        connection.execute(sa.update(ListingUpload).values(rejects_path=str(outside)))
    with Session(office.engine) as session:
        upload_id = session.exec(select(ListingUpload.id)).one()
    page = office.client.get(f"/equipe/imports/{upload_id}")
    assert page.status_code == 200 and "Télécharger le fichier des rejets" not in page.text
    answer = office.client.get(f"/equipe/imports/{upload_id}/rejets")
    assert answer.status_code == 404 and "secret" not in answer.text
    assert office.client.get("/equipe/imports/999/rejets").status_code == 404
    assert office.client.get("/equipe/rejets/..%2Fsynergie.db").status_code == 404


def test_an_unreadable_upload_shows_its_french_error(office: Office) -> None:
    csrf = office.sign_in()
    answer = office.client.post("/equipe/import", data={"csrf": csrf},
                                files={"fichier": ("liste.xlsx", b"ceci n'est pas un classeur")})  # fmt: skip
    assert answer.status_code == 200 and "Importation échouée" in answer.text
    with Session(office.engine) as session:
        upload = session.exec(select(ListingUpload)).one()
        assert session.exec(select(Company)).all() == []
    assert upload.status == UploadStatus.FAILED and upload.error
    shown = html.unescape(answer.text)
    assert "l'en-tête n'a qu'une colonne" in upload.error
    assert upload.error.replace(Path(upload.stored_path).name, "liste.xlsx") in shown
    assert "Traceback" not in answer.text


def test_upload_of_an_xlsx_workbook(office: Office, tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for line in LISTING.splitlines():
        sheet.append([int(v) if v.isdigit() and len(v) == 14 else v for v in line.split(";")])  # type: ignore[union-attr]
    book.save(tmp_path / "liste.xlsx")
    csrf = office.sign_in()
    answer = office.client.post("/equipe/import", data={"csrf": csrf},
                                files={"fichier": ("liste.xlsx", (tmp_path / "liste.xlsx").read_bytes())})  # fmt: skip
    assert "Bilan de l" in answer.text
    with Session(office.engine) as session:
        sirets = sorted(c.siret or "" for c in session.exec(select(Company)))
    assert sirets == ["35600000000048", "73282932000074"]


def _run_as_the_trigger_would(event: ListingUploadedEvent) -> object:
    """Run the import-listing flow with the parameters UPLOAD_TRIGGER draws from the event."""
    from deployments.definitions import UPLOAD_TRIGGER
    from flows.import_listing import ImportListingParams, import_listing

    payload = listing_uploaded_event_fields(event)["payload"]
    templates = UPLOAD_TRIGGER.parameters["params"]  # type: ignore[index]
    params = {
        name: payload[re.fullmatch(r"\{\{ event\.payload\.(\w+) \}\}", template).group(1)]  # type: ignore[union-attr]
        for name, template in templates.items()
    }
    return import_listing(ImportListingParams(**params), return_state=True)


@pytest.mark.usefixtures("prefect_harness")
def test_upload_goes_through_prefect_and_its_page_shows_the_run_result(office: Office) -> None:
    office.prefect[0] = True
    csrf = office.sign_in()
    answer = office.client.post("/equipe/import", data={"csrf": csrf, "communes": "21295"},
                                files={"fichier": ("liste.csv", LISTING.encode())})  # fmt: skip
    assert answer.status_code == 200 and "Importation en cours" in answer.text
    assert '<meta http-equiv="refresh" content="5">' in answer.text
    page = str(answer.url).removeprefix(str(office.client.base_url))
    assert f'href="{page}"' in answer.text  # a plain refresh link
    assert [Path(e.path).read_text() for e in office.uploads] == [LISTING]
    assert office.uploads[0].communes == ("21295",)
    with Session(office.engine) as session:
        assert session.exec(select(Company)).all() == []
    # The deployment's run, started by the trigger, records its outcome for the page.
    state = _run_as_the_trigger_would(office.uploads[0])
    assert state.is_completed()  # type: ignore[attr-defined]
    done = office.client.get(page)
    assert "Bilan de l" in done.text and 'http-equiv="refresh"' not in done.text
    link = re.search(r'href="(/equipe/imports/\d+/rejets)"', done.text).group(1)  # type: ignore[union-attr]
    assert "Siret faux" in office.client.get(link).text
    with Session(office.engine) as session:
        assert len(session.exec(select(Company)).all()) == 2
    # A file gone before its run: the run fails, the page says why in French.
    answer = office.client.post("/equipe/import", data={"csrf": csrf},
                                files={"fichier": ("autre.csv", LISTING.encode())})  # fmt: skip
    Path(office.uploads[1].path).unlink()
    state = _run_as_the_trigger_would(office.uploads[1])
    assert state.is_failed()  # type: ignore[attr-defined]
    failed = office.client.get(str(answer.url).removeprefix(str(office.client.base_url)))
    assert "Importation échouée" in failed.text and "introuvable" in failed.text


def test_a_company_page_shows_its_file(office: Office) -> None:
    moment = office.clock()
    with Session(office.engine) as session:
        company = make_company(
            session, stage=Stage.CONTACTED, name="Fromagerie Brun", name_key="fromagerie brun"
        )
        make_contact(session, company, phone="+33639980101", name="Léa Brun")
        # A call noted "refused" by mistake, then corrected to "interested".
        logged = log_call(session=session, company=company, outcome=CallOutcome.REFUSED, on=None,
                          notes="Pas le temps", actor="caller:1", now=moment, call_minutes=15)  # fmt: skip
        correct_call(session=session, task=logged.task, outcome=CallOutcome.INTERESTED, on=None,
                     notes="Visite en janvier", actor="caller:1",
                     now=moment + timedelta(minutes=4), call_minutes=15)  # fmt: skip
        meeting = Meeting(uid="m-1@test", title="Rencontre de janvier", place="Nuits",
                          starts_at=moment + timedelta(days=40), ends_at=moment + timedelta(days=40, hours=2))  # fmt: skip
        session.add(meeting)
        session.flush()
        session.add(Registration(meeting_id=meeting.id, company_id=company.id,  # type: ignore[arg-type]
                                 status=Answer.REGISTERED, people=2))  # fmt: skip
        session.commit()
        company_id = company.id
    office.sign_in()
    page = office.client.get(f"/equipe/entreprise/{company_id}")
    assert page.status_code == 200
    text = page.text
    assert "Fromagerie Brun" in text and "Léa Brun" in text and "tel:+33639980101" in text
    assert "Étape : <strong>appelée</strong>" in text  # the corrected state
    # The whole history, the mistake included, marked as taken back.
    assert "<s>contactée → a décliné</s> (corrigé)" in text
    assert "correction : appel noté « refus » par erreur, corrigé en « intéressé" in text
    assert text.index("(corrigé)") < text.index("appel : intéressé")
    assert "intéressé (prêt pour une visite)" in text and "Visite en janvier" in text
    assert "Rencontre de janvier : inscrite" in text and "Visites" in text
    assert (
        office.client.get("/equipe/?q=fromagerie").text.count(f"/equipe/entreprise/{company_id}")
        == 1
    )


# Raw stored values the company page must never print (enum values of messages, visits,
# flows' origins and synergies' kinds and roles).
_RAW = ("queued", "sending", "sent", "failed", "bounced", "cancelled", "email", "sms", "phone",
        "booked", "done", "needs-action", "accepted", "declined", "tentative", "giver", "taker",
        "partner", "pooling", "idea", "study", "agreed", "running", "stopped", "staff", "portal")  # fmt: skip


def _page_text(page: str) -> str:
    """The page's visible text: tags, the menu and the head left out."""
    body = page.split("</nav>", 1)[-1] if "</nav>" in page else page.split("<body", 1)[-1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_a_company_page_speaks_french_and_shows_flows_and_synergies(office: Office) -> None:
    moment = office.clock()
    with Session(office.engine) as session:
        company = make_company(session, stage=Stage.VISITED, name="Cartonnerie Roux")
        other = make_company(session, name="Menuiserie Petit")
        contact = make_contact(session, company, email="achats@roux.example",
                               identity="email:achats@roux.example", phone="+33639980102")  # fmt: skip
        staff_id = session.exec(select(StaffMember.id)).one()
        for number, (channel, status, address) in enumerate(
            (
                (Channel.EMAIL, MessageStatus.SENT, "achats@roux.example"),
                (Channel.EMAIL, MessageStatus.BOUNCED, "achats@roux.example"),
                (Channel.SMS, MessageStatus.QUEUED, "+33639980102"),
            )  # fmt: skip
        ):
            session.add(Message(
                key=f"premier-courrier:{contact.id}:{number}", step="premier-courrier",
                channel=channel, contact_id=contact.id, company_id=company.id,
                to_address=address, message_id=f"<m{number}@test>", status=status,
                next_attempt_at=moment, created_at=moment - timedelta(days=3),
                sent_at=moment - timedelta(days=2) if status == MessageStatus.SENT else None,
            ))  # fmt: skip
        session.add(Visit(uid="v-1@test", company_id=company.id, contact_id=contact.id,  # type: ignore[arg-type]
                          staff_id=staff_id, starts_at=moment + timedelta(days=5),
                          ends_at=moment + timedelta(days=5, hours=1),
                          reserved_start=moment + timedelta(days=5, hours=-1),
                          reserved_end=moment + timedelta(days=5, hours=1)))  # fmt: skip
        flow = dict(origin=FlowOrigin.STAFF, category="emballages", quantity=2.5,
                    monthly_quantity=2.5, created_by="staff:1")  # fmt: skip
        session.add(MaterialFlow(company_id=company.id, direction=Direction.INCOMING,  # type: ignore[arg-type]
                                 description="Mandrins en carton", unit=Unit.PIECE,
                                 frequency=Frequency.WEEK, outlet=Outlet.SUPPLIER, **flow))  # fmt: skip
        session.add(MaterialFlow(company_id=company.id, direction=Direction.OUTGOING,  # type: ignore[arg-type]
                                 description="Chutes de carton souillées", unit=Unit.TONNE,
                                 frequency=Frequency.MONTH, outlet=Outlet.LANDFILL,
                                 waste_code="150110", hazardous=True, **flow))  # fmt: skip
        exchange = Synergy(title="Chutes de carton pour la menuiserie", status=SynergyStatus.STUDY)
        collection = Synergy(title="Collecte commune des palettes", kind=SynergyKind.POOLING)
        session.add_all([exchange, collection])
        session.flush()
        session.add_all([
            SynergyParty(synergy_id=exchange.id, company_id=company.id, role="giver"),  # type: ignore[arg-type]
            SynergyParty(synergy_id=exchange.id, company_id=other.id, role="taker"),  # type: ignore[arg-type]
            SynergyParty(synergy_id=collection.id, company_id=company.id, role="partner"),  # type: ignore[arg-type]
            SynergyParty(synergy_id=collection.id, company_id=None, is_authority=True,  # type: ignore[arg-type]
                         role="partner"),
        ])  # fmt: skip
        session.add(FlowSubmission(company_id=company.id, contact_id=contact.id, rows=0,  # type: ignore[arg-type]
                                   submitted_at=moment - timedelta(days=1)))  # fmt: skip
        caller = Caller(name="Bénévole Martin")
        session.add(caller)
        session.flush()
        # Who moved it, as stored: a flow run, a volunteer, the contact, staff, the operator.
        for n, (before, after, actor) in enumerate((
            (Stage.LISTED, Stage.CONTACTED, "flow-run:5f0c1d2e-0000-4000-8000-000000000001"),
            (Stage.CONTACTED, Stage.CALLED, f"caller:{caller.id}"),
            (Stage.CALLED, Stage.VISIT_SCHEDULED, f"contact:{contact.id}"),
            (Stage.VISIT_SCHEDULED, Stage.VISITED, "staff:marie"),
            (Stage.VISITED, Stage.VISITED, "carrier"),
        )):  # fmt: skip
            session.add(StageChange(company_id=company.id, from_stage=before, to_stage=after,  # type: ignore[arg-type]
                                    at=moment - timedelta(days=10 - n), why=f"étape {n}", actor=actor))  # fmt: skip
        bare = make_company(session, name="Garage Bare")
        contact_name = contact.name
        session.commit()
        company_id, bare_id = company.id, bare.id
    office.sign_in()
    page = office.client.get(f"/equipe/entreprise/{company_id}")
    assert page.status_code == 200
    text = _page_text(page.text)
    for raw in _RAW:
        assert not re.search(rf"(?<![\w@.-]){re.escape(raw)}(?![\w@.-])", text), (raw, text)
    # The stage history names who did it in French: no "flow-run:", "caller:" or "contact:".
    assert "étape 0 traitement automatique (exécution 5f0c1d2e)" in text
    assert "étape 1 Bénévole Martin (bénévole)" in text
    assert f"étape 2 {contact_name} (contact de l'entreprise)" in text
    assert "étape 3 marie (équipe)" in text
    assert "étape 4 l'opérateur SMS (réponse STOP)" in text
    assert not re.search(r"\b(flow-run|caller|contact|staff):", text), text
    # Messages: the step as named, channel and state in French, the sent date when sent.
    sent_on = french.short_moment(moment - timedelta(days=2), office.settings.tz)
    assert f"premier-courrier courriel envoyé {sent_on}" in text
    assert "premier-courrier courriel rejeté (adresse ou numéro invalide) —" in text
    assert "premier-courrier SMS en attente d'envoi —" in text
    # Visits.
    assert "prévue en attente de réponse" in text
    # Flows: both directions, the waste code with its star and « dangereux », unit, frequency.
    assert "Flux de matières" in text and "Aucun flux inventorié." not in text
    received = french.short_moment(moment - timedelta(days=1), office.settings.tz)
    assert f"Dernier questionnaire reçu le {received} (0 flux) : à relire." in text
    assert ("Entrant (arrive sur le site) Mandrins en carton — 2,5 pièces par semaine "
            "fournisseur saisi par l'équipe") in text  # fmt: skip
    assert ("Sortant (quitte le site) Chutes de carton souillées 15 01 10* (dangereux) "
            "2,5 t par mois enfouissement saisi par l'équipe") in text  # fmt: skip
    # Synergies: title, kind, status, the company's role, the other parties.
    assert "Aucune synergie." not in text
    assert (
        "Chutes de carton pour la menuiserie substitution à l'étude donne Menuiserie Petit" in text
    )
    assert "Collecte commune des palettes mutualisation idée partenaire la collectivité" in text

    empty = _page_text(office.client.get(f"/equipe/entreprise/{bare_id}").text)
    for sentence in ("Aucun message.", "Aucune visite.", "Aucun flux inventorié.",
                     "Aucune synergie."):  # fmt: skip
        assert sentence in empty
    missing = office.client.get("/equipe/entreprise/999999")
    assert missing.status_code == 404 and "Entreprise introuvable" in missing.text
