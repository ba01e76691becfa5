"""The flow questionnaire in a real Chromium (Playwright): fill, submit, get an error, correct, resubmit, check what was stored."""

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
from sqlmodel import Session, select

from models import FlowSubmission, MaterialFlow
from portal.app import create_app
from portal.events import FlowsSubmittedEvent
from portal.inventory import ADDED_ROWS, EMPTY_ROWS, flows_emitter
from synergie.inventory.questionnaire import inventory_url
from synergie.settings import Settings
from tests.browser import chromium_missing, screenshot
from tests.factories import NOW
from tests.integration.test_prefect_server import free_port
from tests.portal.conftest import Clock, Person, add_person

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@dataclass
class Site:
    base: str
    person: Person
    link: str
    events: list[FlowsSubmittedEvent]


@pytest.fixture
def site(sqlite_engine: sa.Engine, sqlite_settings: Settings) -> Iterator[Site]:
    """The portal served over HTTP by uvicorn on 127.0.0.1, with one visited company's contact."""
    person = add_person(sqlite_engine, company_name="Cartonnerie du Meuzin (fictive)")
    events: list[FlowsSubmittedEvent] = []
    app = create_app(
        settings=sqlite_settings, engine=sqlite_engine, emit=lambda e: None, clock=Clock()
    )
    app.dependency_overrides[flows_emitter] = lambda: events.append
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    link = base + urlsplit(inventory_url(sqlite_settings, person.public_id, now=NOW)).path
    yield Site(base, person, link, events)
    server.should_exit = True
    thread.join(timeout=10)


def every_field_is_labelled(page: Any) -> None:
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(e => e.labels.length === 0).map(e => e.name)"""
    )
    assert unlabelled == []


def fill_row(page: Any, index: int, values: dict[str, str]) -> None:
    for name, value in values.items():
        locator = page.locator(f"#f-{index}-{name}")
        if locator.evaluate("e => e.tagName") == "SELECT":
            locator.select_option(value)
        else:
            locator.fill(value)


def test_fill_submit_correct_and_resubmit_in_chromium(
    site: Site,
    page: Any,
    sqlite_engine: sa.Engine,
) -> None:
    page.goto(site.link)
    assert page.title().startswith("Vos flux de matières")
    assert page.locator("fieldset").count() == EMPTY_ROWS
    assert page.get_by_role("group", name="Flux n° 1").is_visible()
    every_field_is_labelled(page)
    fill_row(page, 0, {"direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
                       "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
                       "trips_per_month": "3", "km_per_trip": "360"})  # fmt: skip
    fill_row(page, 1, {"direction": "sortant", "description": "papier broyé", "waste_code": "99 99 99",
                       "quantity": "-150", "unit": "kg", "frequency": "semaine", "outlet": "collecteur"})  # fmt: skip
    fill_row(page, 2, {"description": "ligne à retirer", "quantity": "1"})
    page.get_by_label("Retirer ce flux n° 3").check()
    screenshot(page, "portail-inventaire-saisie")
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer mes flux").click()

    # Refused: the page comes back with everything typed, each error next to its field.
    alert = page.get_by_role("alert")
    assert "1 ligne(s) à corriger : rien n'a été enregistré" in alert.inner_text()
    code = page.locator("#f-1-waste_code")
    assert code.input_value() == "99 99 99" and code.get_attribute("aria-invalid") == "true"
    assert (
        "n'est pas un code de la liste européenne"
        in page.locator("#f-1-waste_code-erreur").inner_text()
    )
    assert code.get_attribute("aria-describedby") == "f-1-waste_code-erreur"
    assert "-150 est négatif" in page.locator("#f-1-quantity-erreur").inner_text()
    assert page.locator("#f-0-description").input_value() == "chutes de carton"
    assert page.locator("#f-1-unit").input_value() == "kg"
    assert page.locator("#f-2-description").input_value() == ""  # the removed row is gone
    every_field_is_labelled(page)
    screenshot(page, "portail-inventaire-erreurs")
    with sqlite_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM material_flow")).scalar() == 0

    # More rows without JavaScript's help: the page comes back longer, nothing lost.
    rows_before = page.locator("fieldset").count()
    with page.expect_navigation():
        page.get_by_role("button", name="Ajouter des lignes").click()
    assert page.locator("fieldset").count() == rows_before + ADDED_ROWS
    assert page.locator("#f-1-waste_code").input_value() == "99 99 99"

    fill_row(page, 1, {"waste_code": "20 01 01", "quantity": "150"})
    fill_row(page, 2, {"direction": "entrant", "description": "palettes", "category": "palettes-contenants",
                       "quantity": "40", "unit": "palettes", "frequency": "mois", "outlet": "fournisseur",
                       "amount_eur": "320", "money_kind": "coût"})  # fmt: skip
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer mes flux").click()
    assert "Merci : 3 flux enregistrés" in page.locator("h1").inner_text()
    screenshot(page, "portail-inventaire-merci")

    with Session(sqlite_engine) as session:
        stored = session.exec(select(MaterialFlow).order_by(MaterialFlow.id)).all()  # type: ignore[arg-type]
        rows = [(f.direction.value, f.description, f.waste_code, f.hazardous, f.category, f.quantity,
                 f.unit.value, f.frequency.value, round(f.monthly_quantity, 1), f.outlet.value,
                 f.trips_per_month, f.km_per_trip, f.amount_eur) for f in stored]  # fmt: skip
        submissions = session.exec(select(FlowSubmission)).all()
    assert rows == [
        ("sortant", "chutes de carton", "150101", False, "papier-carton", 2.0, "t", "mois", 2.0,
         "collecteur", 3.0, 360.0, None),
        ("sortant", "papier broyé", "200101", False, "papier-carton", 150.0, "kg", "semaine", 650.0,
         "collecteur", None, None, None),
        ("entrant", "palettes", None, False, "palettes-contenants", 40.0, "palettes", "mois", 40.0,
         "fournisseur", None, None, 320.0),
    ]  # fmt: skip
    assert [s.company_id for s in submissions] == [site.person.company_id]
    deadline = time.monotonic() + 5
    while not site.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e.company_id, e.rows) for e in site.events] == [(site.person.company_id, 3)]

    # The same link reopens the answer; a new submission replaces it.
    page.goto(site.link)
    assert page.locator("#f-1-description").input_value() == "papier broyé"
    page.get_by_label("Retirer ce flux n° 3").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer mes flux").click()
    assert "Merci : 2 flux enregistrés" in page.locator("h1").inner_text()
    with Session(sqlite_engine) as session:
        assert [f.description for f in session.exec(select(MaterialFlow))] == [
            "chutes de carton",
            "papier broyé",
        ]
