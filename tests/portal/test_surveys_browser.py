"""The follow-up survey in a real Chromium (Playwright): fill, get errors with everything kept, correct, submit, resubmit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import uvicorn
from sqlmodel import Session, select

from models import Survey, SurveyResponse
from portal.app import create_app
from portal.events import SurveySubmittedEvent
from portal.surveys import survey_emitter
from synergie.settings import Settings
from synergie.surveys.outreach import survey_url
from tests.browser import chromium_missing, screenshot
from tests.integration.test_prefect_server import free_port
from tests.portal.conftest import Clock
from tests.synergie.surveys.conftest import HELD_AT, Held, build_held

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@dataclass
class Site:
    held: Held
    contact_id: int
    link: str
    events: list[SurveySubmittedEvent]


@pytest.fixture
def site(sqlite_engine: sa.Engine, sqlite_settings: Settings) -> Iterator[Site]:
    """The portal served over HTTP by uvicorn on 127.0.0.1, a day after a held meeting's survey opened."""
    held = build_held(sqlite_engine, sqlite_settings)
    held.run(HELD_AT + timedelta(hours=1))
    contact = held.contacts(held.came[0])[0]
    with held.session() as session:
        survey = session.exec(select(Survey)).one()
    events: list[SurveySubmittedEvent] = []
    app = create_app(settings=sqlite_settings, engine=sqlite_engine, emit=lambda e: None,
                     clock=Clock(HELD_AT + timedelta(days=1)))  # fmt: skip
    app.dependency_overrides[survey_emitter] = lambda: events.append
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    link = (
        f"http://127.0.0.1:{port}"
        + urlsplit(survey_url(sqlite_settings, contact.public_id, survey)).path
    )
    yield Site(held, contact.id or 0, link, events)
    server.should_exit = True
    thread.join(timeout=10)


def stored(engine: sa.Engine) -> list[tuple[int, int, dict[str, Any]]]:
    with Session(engine) as session:
        rows = session.exec(select(SurveyResponse)).all()
        return [(r.contact_id, r.version, r.answers) for r in rows]


def test_fill_get_errors_correct_submit_and_resubmit_in_chromium(
    site: Site, page: Any, sqlite_engine: sa.Engine
) -> None:
    page.goto(site.link)
    assert page.title().startswith("Votre avis sur la rencontre")
    assert page.locator("fieldset").count() == 6
    satisfaction = page.get_by_role("group", name="Dans l'ensemble")
    assert satisfaction.is_visible()
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []
    # Fill everything but the two required questions, and too long a text.
    page.get_by_label("Les témoignages d'autres entreprises").check()
    page.get_by_label("Oui", exact=True).check()
    page.locator("#q-sujets-reponse").fill("La consigne des palettes. " * 50)
    page.locator("#q-synergies-reponse").fill("Nos chutes de carton pour l'emballage d'un voisin")
    screenshot(page, "portail-questionnaire-saisie")
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer mes réponses").click()

    alert = page.get_by_role("alert")
    assert "3 réponse(s) à corriger : rien n'a été enregistré" in alert.inner_text()
    first_star = page.locator("#q-satisfaction-1")
    assert first_star.get_attribute("aria-invalid") == "true"
    assert first_star.get_attribute("aria-describedby") == "q-satisfaction-erreur"
    assert "choisissez une note de 1 à 5" in page.locator("#q-satisfaction-erreur").inner_text()
    assert "q-sujets-erreur" in (
        page.locator("#q-sujets-reponse").get_attribute("aria-describedby") or ""
    )
    # Everything typed is still there.
    assert page.get_by_label("Les témoignages d'autres entreprises").is_checked()
    assert page.get_by_label("Oui", exact=True).is_checked()
    assert page.locator("#q-sujets-reponse").input_value() == "La consigne des palettes. " * 50
    assert (
        page.locator("#q-synergies-reponse").input_value()
        == "Nos chutes de carton pour l'emballage d'un voisin"
    )
    screenshot(page, "portail-questionnaire-erreurs")
    assert stored(sqlite_engine) == []

    page.get_by_label("4", exact=True).check()
    page.get_by_label("Oui, comme membre").check()
    page.locator("#q-sujets-reponse").fill("La consigne des palettes")
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer mes réponses").click()
    assert "Merci, votre réponse est enregistrée" in page.locator("h1").inner_text()
    [(contact_id, version, answers)] = stored(sqlite_engine)
    assert (contact_id, version) == (site.contact_id, 1)
    assert answers == {"satisfaction": 4, "utile": ["Les témoignages d'autres entreprises"],
                       "sujets": "La consigne des palettes", "club": "Oui, comme membre",
                       "accueil": True, "synergies": "Nos chutes de carton pour l'emballage d'un voisin"}  # fmt: skip
    screenshot(page, "portail-questionnaire-merci")

    # The same link shows the answer; sending again updates it and says so.
    page.get_by_role("link", name="revenir au questionnaire").click()
    assert "Vous avez répondu le" in page.get_by_role("status").first.inner_text()
    assert page.get_by_label("4", exact=True).is_checked()
    page.get_by_label("5 – Très satisfait·e").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Mettre à jour ma réponse").click()
    assert "Votre réponse est mise à jour" in page.locator("h1").inner_text()
    [(_, version, answers)] = stored(sqlite_engine)
    assert (version, answers["satisfaction"], answers["club"]) == (2, 5, "Oui, comme membre")
    deadline = time.monotonic() + 5
    while len(site.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.version for e in site.events] == [1, 2]
