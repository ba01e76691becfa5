"""Volunteers and staff in a real Chromium: call outcomes from a digest on a phone, staff sign-in, upload, refusals."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
import uvicorn
from sqlmodel import Session, select

from models import CallOutcome, CallTask, Company, StaffMember, StaffSignIn, Stage
from portal.app import create_app
from portal.events import CallLoggedEvent
from synergie.calls.callers import add_caller
from synergie.settings import Settings
from tasks.calls import digests_for
from tests.browser import screenshot
from tests.factories import NOW, make_company, make_contact
from tests.integration.test_prefect_server import free_port
from tests.portal.conftest import Clock
from tests.portal.test_staff import LISTING, Office

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

TODAY = NOW.date()
PHONE = {"width": 390, "height": 844}


@contextmanager
def new_context(browser: Browser, **options: Any) -> Iterator[BrowserContext]:
    """A fresh context of the session's Chromium (a phone, downloads, no JavaScript…), closed after."""
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", **options)
    try:
        yield context
    finally:
        context.close()


@dataclass
class Site:
    base: str
    engine: sa.Engine
    settings: Settings
    clock: Clock
    caller_id: int
    events: list[CallLoggedEvent]
    office: Office = field(init=False)

    def __post_init__(self) -> None:
        # Reads the sign-in e-mails of the file outbox, each once.
        self.office = Office(self.engine, self.settings, None, self.clock)  # type: ignore[arg-type]

    def links(self) -> dict[str, str]:
        """The call links of the caller's digest e-mail, pointed at this server."""
        with Session(self.engine) as session:
            digest = dict((c.id, d) for c, d in digests_for(session, self.settings, TODAY))[
                self.caller_id
            ]
        assert all(line.log_url in digest.email.html for line in digest.lines)
        public = self.settings.public_url.rstrip("/")
        return {line.company: line.log_url.replace(public, self.base) for line in digest.lines}

    def outcome(self, name: str) -> tuple[CallOutcome | None, Stage]:
        with Session(self.engine) as session:
            company = session.exec(select(Company).where(Company.name == name)).one()
            task = session.exec(
                select(CallTask).where(CallTask.company_id == company.id).order_by(CallTask.id)
            ).first()  # type: ignore[arg-type]
            return (task.outcome if task else None), Stage(company.stage)


@pytest.fixture
def site(sqlite_engine: sa.Engine, sqlite_settings: Settings) -> Iterator[Site]:
    with Session(sqlite_engine) as session:
        caller = add_caller(
            session=session, name="Alice", phone=None, email="alice@example.org", per_day=5
        )
        for index, name in enumerate(
            ["Tonnellerie Meunier", "Scierie Vallet", "Cartonnerie Roy", "Fromagerie Brun"]
        ):
            company = make_company(session, stage=Stage.CONTACTED, name=name, name_key=name.lower())
            contact = make_contact(
                session, company, phone=f"+3363998010{index}", name=f"Contact {index}"
            )
            session.add(CallTask(company_id=company.id, contact_id=contact.id, caller_id=caller.id,  # type: ignore[arg-type]
                                 due_on=TODAY, assigned_on=TODAY, created_at=NOW))  # fmt: skip
        session.add(StaffMember(name="Claire Martin", email="claire@cc-gevrey-nuits.example"))
        session.commit()
        caller_id = caller.id
    clock = Clock()
    events: list[CallLoggedEvent] = []
    app = create_app(settings=sqlite_settings, engine=sqlite_engine, emit=lambda e: None, clock=clock,
                     emit_call=events.append, prefect_api=lambda: False)  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", sqlite_engine, sqlite_settings, clock, caller_id, events)  # type: ignore[arg-type]
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "sans-js"])
def test_a_volunteer_notes_three_outcomes_on_a_phone(
    site: Site, browser: Browser, javascript: bool
) -> None:
    phone = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True,
                        java_script_enabled=javascript)  # fmt: skip
    with phone as context:
        page = context.new_page()
        links = site.links()
        # 1. Reached and interested.
        page.goto(links["Tonnellerie Meunier"])
        assert (
            page.get_by_role("link", name="Appeler le 06 39 98 01 00").get_attribute("href")
            == "tel:+33639980100"
        )
        # No sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, f"appel-formulaire-{'js' if javascript else 'sans-js'}")
        page.get_by_label("Intéressé : prêt pour une visite").check()
        page.get_by_label("Notes").fill("Voir avec le directeur du site")
        page.get_by_role("button", name="Enregistrer").click()
        assert page.get_by_role("status").inner_text().startswith("C'est noté")
        screenshot(page, f"appel-note-{'js' if javascript else 'sans-js'}")
        # 2. A callback on a date.
        page.goto(links["Scierie Vallet"])
        page.get_by_label("À rappeler (date ci-dessous)").check()
        page.get_by_label("Date du rappel (si « à rappeler »)").fill(
            (TODAY + timedelta(days=2)).isoformat()
        )
        page.get_by_role("button", name="Enregistrer").click()
        assert "Prochain appel prévu le" in page.get_by_role("status").inner_text()
        # 3. No answer.
        page.goto(links["Cartonnerie Roy"])
        page.get_by_label("Pas de réponse").check()
        page.get_by_role("button", name="Enregistrer").click()
        assert page.get_by_role("status").is_visible()
        # The same link again says it is noted and offers a correction.
        page.goto(links["Tonnellerie Meunier"])
        page.get_by_label("Joint", exact=True).check()
        page.get_by_role("button", name="Enregistrer la correction").click()
        assert "Correction enregistrée" in page.get_by_role("status").inner_text()
    assert site.outcome("Tonnellerie Meunier") == (CallOutcome.REACHED, Stage.CALLED)
    assert site.outcome("Scierie Vallet") == (CallOutcome.CALLBACK, Stage.CALLED)
    assert site.outcome("Cartonnerie Roy") == (CallOutcome.NO_ANSWER, Stage.CONTACTED)
    assert site.outcome("Fromagerie Brun") == (None, Stage.CONTACTED)
    assert [e.outcome for e in site.events] == ["interested", "callback", "no-answer", "reached"]


def _sign_in(site: Site, page: Page) -> str:
    """Ask for a sign-in link as staff do; return it once its e-mail has been sent."""
    page.goto(f"{site.base}/equipe/connexion")
    page.get_by_label("Adresse e-mail").fill("claire@cc-gevrey-nuits.example")
    page.get_by_role("button", name="Recevoir mon lien de connexion").click()
    assert "vient d'y être envoyé" in page.get_by_role("status").inner_text()
    # The e-mail leaves after the answer (a background task): wait for it, with a deadline.
    return site.base + site.office.sign_in_link()


def test_staff_sign_in_upload_and_rejects(site: Site, browser: Browser, tmp_path: Path) -> None:
    with new_context(
        browser, viewport={"width": 1000, "height": 900}, accept_downloads=True
    ) as context:
        page = context.new_page()
        link = _sign_in(site, page)
        page.goto(link)
        page.get_by_role("button", name="Me connecter").click()
        assert page.get_by_role("heading", name="Pages de l'équipe").is_visible()
        cookie = next(c for c in context.cookies() if c["name"] == "synergie_equipe")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.get_by_role("link", name="Importer une liste d'entreprises").click()
        listing = tmp_path / "entreprises.csv"
        listing.write_text(LISTING, encoding="utf-8")
        page.get_by_label("Fichier (CSV, extrait SIRENE ou classeur Excel .xlsx)").set_input_files(
            str(listing)
        )
        page.get_by_role("button", name="Importer").click()
        assert page.get_by_role("heading", name="Bilan de l'importation").is_visible()
        assert page.get_by_role("row", name="Lignes rejetées 1").is_visible()
        screenshot(page, "equipe-bilan-import")
        with page.expect_download() as download:
            page.get_by_role("link", name="Télécharger le fichier des rejets").click()
        saved = tmp_path / "rejets.csv"
        download.value.save_as(saved)
        assert "Siret faux" in saved.read_text(encoding="utf-8-sig")
        # The staff home lists the upload, and leads back to its result.
        page.goto(f"{site.base}/equipe/")
        page.get_by_role("link", name="« entreprises.csv »").click()
        assert page.get_by_role("heading", name="Bilan de l'importation").is_visible()
        # The used link is refused, in French, and opens nothing.
        page.goto(link)
        assert "déjà servi" in page.get_by_role("alert").inner_text()
    with Session(site.engine) as session:
        assert len(session.exec(select(StaffSignIn)).all()) == 1


def test_refusals_are_clear_french_pages_that_change_nothing(
    site: Site, browser: Browser, page: Page, tmp_path: Path
) -> None:
    with new_context(browser, java_script_enabled=False) as context:
        plain = context.new_page()
        # A staff page without a session.
        plain.goto(f"{site.base}/equipe/import")
        assert plain.get_by_role("heading", name="Connexion requise").is_visible()
        assert "Rien n'a été modifié" in plain.get_by_role("main").inner_text()
        screenshot(plain, "equipe-connexion-requise")
        # An expired sign-in link.
        link = _sign_in(site, plain)
        site.clock.now = NOW + timedelta(minutes=site.settings.staff_sign_in_minutes + 1)
        plain.goto(link)
        assert "expiré" in plain.get_by_role("alert").inner_text()
        screenshot(plain, "equipe-lien-expire")
    site.clock.now = NOW
    with Session(site.engine) as session:
        assert session.exec(select(StaffSignIn)).all() == []
    # A form whose CSRF token was taken out before sending (the shared page: a new context).
    page.goto(_sign_in(site, page))
    page.get_by_role("button", name="Me connecter").click()
    page.goto(f"{site.base}/equipe/import")
    page.evaluate("document.querySelector('form[action$=\"/import\"] input[name=csrf]').remove()")
    listing = tmp_path / "entreprises.csv"
    listing.write_text(LISTING, encoding="utf-8")
    page.get_by_label("Fichier (CSV, extrait SIRENE ou classeur Excel .xlsx)").set_input_files(
        str(listing)
    )
    page.get_by_role("button", name="Importer").click()
    assert page.get_by_role("heading", name="Formulaire expiré").is_visible()
    assert "Rien n'a été modifié" in page.get_by_role("main").inner_text()
    screenshot(page, "equipe-formulaire-sans-jeton")
    with Session(site.engine) as session:
        assert (
            session.exec(select(Company).where(Company.name == "Tonnellerie Meunier")).one().stage
            == Stage.CONTACTED
        )
        assert len(session.exec(select(Company)).all()) == 4  # nothing imported
    assert not (site.settings.data_dir / "uploads").exists()
