"""The follow-up survey's page through FastAPI's TestClient, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from models import Contact, Survey, SurveyResponse
from portal.events import (
    SURVEY_SUBMITTED_EVENT,
    SurveySubmittedEvent,
    survey_submitted_event_fields,
)
from portal.surveys import survey_emitter
from synergie.surveys.outreach import survey_url
from tests.portal.conftest import Portal
from tests.synergie.surveys.conftest import HELD_AT, Held, build_held

VALID = {
    "q-satisfaction": "4",
    "q-utile": ["Les témoignages d'autres entreprises", "Le moment convivial, pour faire connaissance"],
    "q-sujets": "Les palettes & les emballages <consignés>",
    "q-club": "Oui, comme membre",
    "q-accueil": "oui",
    "q-synergies": "",
    "version": "0",
}  # fmt: skip


@pytest.fixture
def surveyed(make_portal: Callable[..., Portal]) -> tuple[Portal, Held, list[SurveySubmittedEvent]]:
    portal = make_portal()
    held = build_held(portal.engine, portal.settings)
    held.run(HELD_AT + timedelta(hours=1))
    portal.clock.now = HELD_AT + timedelta(days=1)
    events: list[SurveySubmittedEvent] = []
    portal.client.app.dependency_overrides[survey_emitter] = lambda: events.append  # type: ignore[attr-defined]
    return portal, held, events


def link(held: Held, contact: Contact) -> str:
    with held.session() as session:
        survey = session.exec(select(Survey)).one()
    return urlsplit(survey_url(held.settings, contact.public_id, survey)).path


def responses(held: Held) -> list[tuple[int, int, dict[str, object]]]:
    with Session(held.engine) as session:
        rows = session.exec(select(SurveyResponse).order_by(SurveyResponse.id)).all()  # type: ignore[arg-type]
        return [(r.contact_id, r.version, r.answers) for r in rows]


def test_the_page_is_one_labelled_fieldset_per_question_without_javascript(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, _ = surveyed
    page = portal.client.get(link(held, held.contacts(held.came[0])[0]))
    assert page.status_code == 200 and "Votre avis sur la rencontre" in page.text
    assert page.text.count("<fieldset") == 6 and page.text.count("<legend>") == 6
    ids = re.findall(
        r'<(?:input|textarea) type="(?:radio|checkbox|text)" id="([^"]+)"|<textarea id="([^"]+)"',
        page.text,
    )
    ids = [a or b for a, b in ids]
    labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', page.text))
    assert ids and set(ids) <= labelled
    assert "(obligatoire)" in page.text and "1 – Pas du tout satisfait·e" in page.text
    assert "<script" not in page.text and page.headers["cache-control"] == "no-store"


def test_errors_are_tied_to_their_question_and_everything_typed_is_kept(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, events = surveyed
    path = link(held, held.contacts(held.came[0])[0])
    typed = {**VALID, "q-satisfaction": "", "q-club": "", "q-sujets": "x" * 1001}
    page = portal.client.post(path, data=typed)
    assert (
        page.status_code == 422
        and "3 réponse(s) à corriger : rien n'a été enregistré" in html.unescape(page.text)
    )
    assert responses(held) == [] and events == []
    assert "Cette question est obligatoire : choisissez une note de 1 à 5." in page.text
    assert "Votre réponse compte 1001 caractères, 1000 au plus" in page.text
    # Each error has an id that the question's fields point to.
    for question in ("satisfaction", "club", "sujets"):
        assert f'id="q-{question}-erreur"' in page.text
        assert re.search(
            rf'name="q-{question}"[^>]*aria-describedby="[^"]*q-{question}-erreur"', page.text
        )
    # What was typed is there again: the checked boxes, the answer, the long text.
    assert re.search(r'value="Les témoignages d&#39;autres entreprises" checked', page.text)
    assert re.search(r'name="q-accueil" value="oui" checked', page.text)
    assert "x" * 1001 + "</textarea>" in page.text


def test_an_answer_is_stored_then_updated_and_the_page_says_so(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, events = surveyed
    contact = held.contacts(held.came[0])[0]
    path = link(held, contact)
    first = portal.client.post(path, data=VALID)
    assert first.status_code == 200 and "Merci, votre réponse est enregistrée" in first.text
    assert html.escape("Les palettes & les emballages <consignés>", quote=False) in first.text
    [(who, version, answers)] = responses(held)
    assert (who, version) == (contact.id, 1)
    assert answers == {"satisfaction": 4, "club": "Oui, comme membre", "accueil": True,
                       "sujets": "Les palettes & les emballages <consignés>",
                       "utile": ["Les témoignages d'autres entreprises",
                                 "Le moment convivial, pour faire connaissance"]}  # fmt: skip
    again = portal.client.get(path)
    assert "Vous avez répondu le" in again.text and 'name="version" value="1"' in again.text
    assert re.search(r'name="q-satisfaction" value="4" checked', again.text)
    updated = portal.client.post(path, data={**VALID, "q-satisfaction": "5", "version": "1"})
    assert updated.status_code == 200 and "Votre réponse est mise à jour" in updated.text
    [(_, version, answers)] = responses(held)
    assert (version, answers["satisfaction"]) == (2, 5)
    assert [(e.contact_public_id, e.version) for e in events] == [
        (contact.public_id, 1),
        (contact.public_id, 2),
    ]
    fields = survey_submitted_event_fields(events[1])
    assert fields["event"] == SURVEY_SUBMITTED_EVENT
    assert fields["payload"]["meeting_id"] == held.meeting_id


def test_a_late_tab_never_overwrites_the_newer_answer(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, _ = surveyed
    path = link(held, held.contacts(held.came[0])[0])
    portal.client.post(path, data=VALID)
    portal.client.post(path, data={**VALID, "q-satisfaction": "5", "version": "1"})
    late = portal.client.post(path, data={**VALID, "q-satisfaction": "1", "version": "1"})
    assert late.status_code == 409 and "rien n'a été remplacé" in html.unescape(late.text)
    assert re.search(r'name="q-satisfaction" value="1" checked', late.text)  # kept, not lost
    assert 'name="version" value="2"' in late.text  # sending again is now a choice
    assert [v for _, v, _ in responses(held)] == [2] and responses(held)[0][2]["satisfaction"] == 5
    fresh = portal.client.post(path, data={**VALID, "q-satisfaction": "1", "version": "2"})
    assert fresh.status_code == 200 and responses(held)[0][2]["satisfaction"] == 1


def test_a_contact_never_sees_another_ones_answer(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, _ = surveyed
    first, colleague = held.contacts(held.came[0])
    portal.client.post(link(held, first), data={**VALID, "q-sujets": "secret de Première"})
    page = portal.client.get(link(held, colleague))
    assert page.status_code == 200 and "secret de Première" not in page.text
    assert "Vous avez répondu" not in page.text and 'name="version" value="0"' in page.text


def test_a_closed_survey_says_so_and_takes_nothing(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, events = surveyed
    path = link(held, held.contacts(held.came[0])[0])
    portal.clock.now = HELD_AT + timedelta(days=40)
    page = portal.client.get(path)
    assert page.status_code == 200 and "Ce questionnaire est clos" in page.text
    assert "<form" not in page.text
    refused = portal.client.post(path, data=VALID)
    assert refused.status_code == 409 and "Ce questionnaire est clos" in refused.text
    assert responses(held) == [] and events == []


def test_a_tampered_link_gets_a_french_error_page(surveyed) -> None:  # type: ignore[no-untyped-def]
    portal, held, _ = surveyed
    path = link(held, held.contacts(held.came[0])[0])
    page = portal.client.get(path[:-3] + "AAA")
    assert page.status_code == 400 and "Lien non valide" in page.text
    inventory_like = portal.client.get("/suivi/v1.abc.def")
    assert inventory_like.status_code == 400
