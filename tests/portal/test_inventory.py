"""The flow questionnaire's pages through FastAPI's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from models import FlowOrigin, FlowSubmission, MaterialFlow, Stage
from portal.events import FLOWS_SUBMITTED_EVENT, FlowsSubmittedEvent, flows_submitted_event_fields
from portal.inventory import ADDED_ROWS, EMPTY_ROWS, flows_emitter
from synergie.inventory.questionnaire import inventory_url
from synergie.inventory.rows import FIELDS, validate_flow
from synergie.inventory.store import add_flows
from tests.factories import NOW
from tests.portal.conftest import Person, Portal, add_person

CARDBOARD = {
    "direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
    "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
    "trips_per_month": "3", "km_per_trip": "360",
}  # fmt: skip


@pytest.fixture
def flows_portal(make_portal: Callable[..., Portal]) -> tuple[Portal, list[FlowsSubmittedEvent]]:
    portal = make_portal()
    events: list[FlowsSubmittedEvent] = []
    portal.client.app.dependency_overrides[flows_emitter] = lambda: events.append  # type: ignore[attr-defined]
    return portal, events


def path(portal: Portal, person: Person) -> str:
    return urlsplit(inventory_url(portal.settings, person.public_id, now=NOW)).path


def form(rows: list[dict[str, str]], action: str = "envoyer", **extra: str) -> dict[str, str]:
    data = {"lignes": str(len(rows)), "action": action, **extra}
    for index, row in enumerate(rows):
        for name in FIELDS:
            data[f"f-{index}-{name}"] = row.get(name, "")
    return data


def stored(portal: Portal) -> list[tuple[str, str, str | None, float]]:
    with Session(portal.engine) as session:
        rows = session.exec(select(MaterialFlow).order_by(MaterialFlow.id)).all()  # type: ignore[arg-type]
        return [(r.origin.value, r.description, r.waste_code, r.monthly_quantity) for r in rows]


def test_the_page_shows_empty_labelled_rows_in_fieldsets(flows_portal: tuple[Portal, list]) -> None:  # type: ignore[type-arg]
    portal, _ = flows_portal
    person = portal.add_person(company_name="Cartonnerie Test")
    page = portal.client.get(path(portal, person))
    assert page.status_code == 200 and "Les flux de matières de Cartonnerie Test" in page.text
    assert page.text.count("<fieldset") == EMPTY_ROWS
    assert page.text.count("<legend>Flux n°") == EMPTY_ROWS
    ids = re.findall(r'<(?:input|select) id="([^"]+)"', page.text)
    labelled = set(re.findall(r'<label for="([^"]+)"', page.text))
    assert ids and set(ids) <= labelled
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text  # works without JavaScript


def test_add_rows_keeps_what_was_typed_and_drops_removed_rows(
    flows_portal: tuple[Portal, list],
) -> None:  # type: ignore[type-arg]
    portal, events = flows_portal
    person = portal.add_person()
    rows = [CARDBOARD, {**CARDBOARD, "description": "à retirer"}, {}]
    page = portal.client.post(
        path(portal, person), data=form(rows, "ajouter", **{"f-1-retirer": "1"})
    )
    assert page.status_code == 200 and f"{ADDED_ROWS} lignes ajoutées" in page.text
    assert page.text.count("<fieldset") == 2 + ADDED_ROWS
    assert 'value="chutes de carton"' in page.text and "à retirer" not in page.text
    assert stored(portal) == [] and events == []


def test_errors_come_back_with_everything_typed_and_nothing_stored(
    flows_portal: tuple[Portal, list],
) -> None:  # type: ignore[type-arg]
    portal, events = flows_portal
    person = portal.add_person()
    bad = [CARDBOARD, {**CARDBOARD, "description": "bidons", "waste_code": "99 99 99",
                       "quantity": "-4", "unit": "t"}, {}]  # fmt: skip
    page = portal.client.post(path(portal, person), data=form(bad))
    assert page.status_code == 422
    assert "1 ligne(s) à corriger : rien n'a été enregistré" in html.unescape(page.text)
    assert (
        'id="f-1-waste_code" name="f-1-waste_code" type="text" value="99 99 99" aria-invalid="true" aria-describedby="f-1-waste_code-erreur"'
        in page.text
    )
    assert re.search(
        r'id="f-1-waste_code-erreur">« 99 99 99 » n\'est pas un code de la liste européenne',
        html.unescape(page.text),
    )
    assert re.search(r'id="f-1-quantity-erreur">-4 est négatif', page.text)
    assert 'value="chutes de carton"' in page.text and 'value="bidons"' in page.text
    assert '<option value="sortant" selected>' in page.text
    assert 'href="#ligne-1"' in page.text
    assert stored(portal) == [] and events == []


def test_an_empty_form_is_refused(flows_portal: tuple[Portal, list]) -> None:  # type: ignore[type-arg]
    portal, _ = flows_portal
    page = portal.client.post(path(portal, portal.add_person()), data=form([{}, {}]))
    assert page.status_code == 422 and "Remplissez au moins une ligne" in page.text


def test_submitting_stores_replaces_and_announces(flows_portal: tuple[Portal, list]) -> None:  # type: ignore[type-arg]
    portal, events = flows_portal
    person = portal.add_person()
    with Session(
        portal.engine
    ) as session:  # a flow staff entered: the company's answer leaves it alone
        from models import Company

        company = session.get(Company, person.company_id)
        add_flows(session=session, company=company, rows=[validate_flow({**CARDBOARD, "description": "palettes"})],  # type: ignore[arg-type]
                  origin=FlowOrigin.STAFF, actor="staff:test", now=NOW)  # fmt: skip
        session.commit()
    paper = {**CARDBOARD, "description": "papier broyé", "waste_code": "20 01 01", "quantity": "150",
             "unit": "kg", "frequency": "semaine", "trips_per_month": "", "km_per_trip": ""}  # fmt: skip
    done = portal.client.post(path(portal, person), data=form([CARDBOARD, {}, paper]))
    assert done.status_code == 200 and "Merci : 2 flux enregistrés" in done.text
    assert [(e.company_id, e.rows) for e in events] == [(person.company_id, 2)]
    assert stored(portal)[1:] == [("portal", "chutes de carton", "150101", 2.0),
                                  ("portal", "papier broyé", "200101", pytest.approx(650))]  # fmt: skip
    # The same link shows the answer again, to correct it.
    again = portal.client.get(path(portal, person))
    assert 'value="papier broyé"' in again.text and 'value="20 01 01"' in again.text
    assert "votre nouvel envoi remplacera le précédent" in again.text
    portal.client.post(path(portal, person), data=form([{**CARDBOARD, "quantity": "2,5"}]))
    assert stored(portal) == [("staff", "palettes", "150101", 2.0),
                              ("portal", "chutes de carton", "150101", 2.5)]  # fmt: skip
    with Session(portal.engine) as session:
        assert [
            s.rows for s in session.exec(select(FlowSubmission).order_by(FlowSubmission.id))
        ] == [2, 1]  # type: ignore[arg-type]
    assert len(events) == 2 and portal.stage(person.company_id) == Stage.LISTED


def test_one_company_never_sees_another_ones_answer(flows_portal: tuple[Portal, list]) -> None:  # type: ignore[type-arg]
    portal, _ = flows_portal
    first = portal.add_person(company_name="Première")
    second = add_person(portal.engine, company_name="Seconde", email="autre@example.org",
                        identity="email:autre@example.org")  # fmt: skip
    portal.client.post(path(portal, first), data=form([CARDBOARD]))
    page = portal.client.get(path(portal, second))
    assert "Seconde" in page.text and 'value="chutes de carton"' not in page.text


def test_a_tampered_or_expired_link_gets_a_french_error_page(
    flows_portal: tuple[Portal, list],
) -> None:  # type: ignore[type-arg]
    portal, events = flows_portal
    person = portal.add_person()
    link = path(portal, person)
    tampered = link[:-2] + ("A" if link[-2] != "A" else "B") + link[-1]
    page = portal.client.post(tampered, data=form([CARDBOARD]))
    assert page.status_code == 400 and "Lien non valide" in page.text
    assert "Rien n'a été modifié" in html.unescape(page.text)
    portal.clock.now = NOW + timedelta(days=portal.settings.inventory_link_days + 1)
    expired = portal.client.get(link)
    assert expired.status_code == 400 and "Ce lien a expiré" in expired.text
    assert stored(portal) == [] and events == []


def test_the_event_names_the_company_for_the_trigger() -> None:
    fields = flows_submitted_event_fields(
        FlowsSubmittedEvent(company_id=7, submission_id=3, rows=2, occurred=NOW)
    )
    assert fields["event"] == FLOWS_SUBMITTED_EVENT == "synergie.flows.submitted"
    assert fields["resource"]["prefect.resource.id"] == "synergie.company.7"
    assert fields["payload"] == {"company_id": 7, "submission_id": 3, "rows": 2}
