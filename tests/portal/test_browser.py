"""The portal's pages in a real Chromium: usable without JavaScript, labelled, in fieldsets, by keyboard."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import uvicorn

from models import Answer, Channel
from portal.app import create_app
from portal.events import MeetingEvent
from synergie.meetings.lifecycle import invite_meeting
from synergie.messaging.links import referral_url, rsvp_url, unsubscribe_url
from synergie.settings import Settings
from tests.browser import chromium_missing, screenshot
from tests.factories import NOW
from tests.integration.test_prefect_server import free_port
from tests.portal.conftest import Clock, opt_out_rows
from tests.synergie.meetings.conftest import Territory, build_territory

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@dataclass
class Site:
    base: str
    territory: Territory
    events: list[MeetingEvent]

    def contact(self, company_id: int) -> Any:
        with self.territory.session() as session:
            return self.territory.contact(session, company_id)

    def url(self, link: str) -> str:
        return self.base + urlsplit(link).path

    def status(self, company_id: int) -> Answer:
        with self.territory.session() as session:
            return Answer(self.territory.registration(session, company_id).status)


@pytest.fixture
def site(sqlite_engine: sa.Engine, sqlite_settings: Settings) -> Iterator[Site]:
    """The portal served over HTTP by uvicorn on 127.0.0.1, on a territory with an invited meeting."""
    t = build_territory(sqlite_engine, sqlite_settings, companies=4, capacity=3, per_company=2)
    with t.session() as session:
        invite_meeting(session=session, meeting=t.meeting(session), settings=sqlite_settings,
                       templates=t.templates, now=NOW)  # fmt: skip
        session.commit()
    events: list[MeetingEvent] = []
    app = create_app(settings=sqlite_settings, engine=sqlite_engine, emit=lambda e: None, clock=Clock(),
                     emit_meeting=events.append)  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", t, events)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def no_js_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale="fr-FR", java_script_enabled=False, viewport={"width": 1000, "height": 900}
    )
    yield context.new_page()
    context.close()


def focus_ring(page: Any) -> str:
    return str(page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))


def every_field_is_labelled(page: Any) -> None:
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []


def test_rsvp_by_keyboard_with_javascript(site: Site, page: Any) -> None:
    company = site.territory.companies[1]
    page.goto(
        site.url(
            rsvp_url(
                site.territory.settings,
                site.contact(company).public_id,
                site.territory.meeting_id,
                "oui",
            )
        )
    )
    assert page.title().startswith("Votre réponse")
    assert page.get_by_role("group", name="Votre réponse").is_visible()
    assert page.get_by_role("radio", name="Je viens").is_checked()
    every_field_is_labelled(page)
    screenshot(page, "portail-reponse-rencontre")
    # Keyboard only: Tab reaches the checked radio first, its focus is visible.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    while page.evaluate("document.activeElement.name") != "reponse":
        page.keyboard.press("Tab")
    assert focus_ring(page) == "solid"
    page.get_by_label("Nombre de personnes").select_option("2")
    page.get_by_label("Remarque").fill("Un végétarien")
    page.get_by_role("button", name="Envoyer ma réponse").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="Inscription confirmée").is_visible()
    screenshot(page, "portail-reponse-enregistree")
    assert site.status(company) == Answer.REGISTERED
    # The confirmation's referral link opens the referral form.
    page.get_by_role("link", name="inviter une entreprise").click()
    assert page.get_by_role("heading", name="Invitez une entreprise de votre réseau").is_visible()


def test_rsvp_and_waiting_list_without_javascript(site: Site, no_js_page: Any) -> None:
    first, second = site.territory.companies[1:3]
    for company in (first, second):
        no_js_page.goto(site.url(rsvp_url(site.territory.settings, site.contact(company).public_id,
                                          site.territory.meeting_id, "oui")))  # fmt: skip
        no_js_page.get_by_label("Nombre de personnes").select_option("2")
        no_js_page.get_by_role("button", name="Envoyer ma réponse").click()
    assert no_js_page.get_by_role("heading", name="Vous êtes sur liste d'attente").is_visible()
    assert "position 1" in no_js_page.content()
    screenshot(no_js_page, "portail-liste-attente-sans-javascript")
    assert (site.status(first), site.status(second)) == (Answer.REGISTERED, Answer.WAITING)


def test_referral_form_errors_then_success_without_javascript(site: Site, no_js_page: Any) -> None:
    company = site.territory.companies[1]
    contact = site.contact(company)
    no_js_page.goto(
        site.url(
            rsvp_url(site.territory.settings, contact.public_id, site.territory.meeting_id, "oui")
        )
    )
    no_js_page.get_by_role("button", name="Envoyer ma réponse").click()
    no_js_page.goto(
        site.url(
            referral_url(site.territory.settings, contact.public_id, site.territory.meeting_id)
        )
    )
    for legend in ("L'entreprise", "La personne à inviter", "Accord"):
        assert no_js_page.get_by_role("group", name=legend).is_visible()
    every_field_is_labelled(no_js_page)
    screenshot(no_js_page, "portail-parrainage")
    no_js_page.get_by_label("Nom de l'entreprise").fill("Cartonnerie Voisine")
    no_js_page.get_by_label("SIRET").fill("12345678901234")
    no_js_page.get_by_label("Code postal").fill("21700")
    no_js_page.get_by_label("Commune").fill("Nuits-Saint-Georges")
    no_js_page.get_by_label("Nom et prénom").fill("Léa Voisin")
    no_js_page.get_by_label("Adresse e-mail").fill("lea@example.org")
    no_js_page.get_by_role("button", name="Inviter cette entreprise").click()
    alert = no_js_page.get_by_role("alert")
    assert "SIRET invalide" in alert.inner_text() and "Cochez la case" in alert.inner_text()
    assert no_js_page.get_by_label("SIRET").get_attribute("aria-invalid") == "true"
    assert no_js_page.get_by_label("Nom de l'entreprise").input_value() == "Cartonnerie Voisine"
    screenshot(no_js_page, "portail-parrainage-erreurs")
    no_js_page.get_by_label("SIRET").fill("")
    no_js_page.get_by_label("Cette personne accepte d'être contactée").check()
    no_js_page.get_by_role("button", name="Inviter cette entreprise").click()
    assert no_js_page.get_by_role("heading", name="Merci !").is_visible()
    screenshot(no_js_page, "portail-parrainage-enregistre")
    assert [e.name for e in site.events][-1] == "synergie.referral.created"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "sans-js"])
def test_unsubscribe_pages_by_keyboard(site: Site, browser: Any, javascript: bool) -> None:
    context = browser.new_context(locale="fr-FR", java_script_enabled=javascript)
    page = context.new_page()
    contact = site.contact(site.territory.companies[2])
    page.goto(site.url(unsubscribe_url(site.territory.settings, contact.public_id, Channel.EMAIL)))
    assert page.get_by_role("heading", name="Vous désinscrire").is_visible()
    screenshot(page, f"portail-desinscription-{'js' if javascript else 'sans-js'}")
    page.keyboard.press("Tab")
    while page.evaluate("document.activeElement.tagName") != "BUTTON":
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Me désinscrire"
    assert focus_ring(page) == "solid"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="C'est noté").is_visible()
    screenshot(page, f"portail-desinscription-faite-{'js' if javascript else 'sans-js'}")
    assert [(row[0], row[1]) for row in opt_out_rows(site.territory.engine)] == [
        (contact.id, Channel.EMAIL)
    ]
    context.close()
