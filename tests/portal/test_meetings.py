"""The meeting pages of the portal: answer by signed link (GET shows, POST records), waiting list, referrals."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Answer, Company, Contact, Referral, Source
from portal.app import create_app
from portal.events import (
    INVITATION_ANSWERED_EVENT,
    REFERRAL_CREATED_EVENT,
    MeetingEvent,
    meeting_event_fields,
)
from synergie.meetings.lifecycle import invite_meeting
from synergie.messaging.links import referral_url, rsvp_url
from synergie.settings import Settings
from tests.factories import NOW, luhn_siret, make_company
from tests.portal.conftest import Clock
from tests.synergie.meetings.conftest import START, Territory, build_territory

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def text(response) -> str:  # type: ignore[no-untyped-def]
    return unescape(response.text)


@dataclass
class MeetingPortal:
    client: TestClient
    territory: Territory
    clock: Clock
    events: list[MeetingEvent] = field(default_factory=list)

    def link(self, company_id: int, choice: str = "oui") -> str:
        with self.territory.session() as session:
            contact = self.territory.contact(session, company_id)
        return urlsplit(
            rsvp_url(self.territory.settings, contact.public_id, self.territory.meeting_id, choice)
        ).path

    def form(self, company_id: int) -> str:
        """Where the answer form posts: the link without its preselected answer."""
        return self.link(company_id).rpartition("/")[0]

    def referral_link(self, company_id: int) -> str:
        with self.territory.session() as session:
            contact = self.territory.contact(session, company_id)
        return urlsplit(
            referral_url(self.territory.settings, contact.public_id, self.territory.meeting_id)
        ).path

    def status(self, company_id: int) -> tuple[Answer, int]:
        with self.territory.session() as session:
            registration = self.territory.registration(session, company_id)
            return Answer(registration.status), registration.people


def build_portal(
    engine: sa.Engine, settings: Settings, **territory: int
) -> Iterator[MeetingPortal]:
    t = build_territory(engine, settings, **territory)
    with t.session() as session:
        invite_meeting(
            session=session,
            meeting=t.meeting(session),
            settings=settings,
            templates=t.templates,
            now=NOW,
        )
        session.commit()
    clock = Clock()
    events: list[MeetingEvent] = []
    app = create_app(
        settings=settings,
        engine=engine,
        emit=lambda e: None,
        clock=clock,
        emit_meeting=events.append,
    )
    with TestClient(app) as client:
        yield MeetingPortal(client, t, clock, events)


@pytest.fixture
def mportal(engine: sa.Engine, settings: Settings) -> Iterator[MeetingPortal]:
    yield from build_portal(engine, settings, companies=4, capacity=3, per_company=2)


def test_a_get_shows_the_meeting_and_the_form_and_changes_nothing(mportal: MeetingPortal) -> None:
    company = mportal.territory.companies[1]
    page = mportal.client.get(mportal.link(company, "peut-etre"))
    assert page.status_code == 200
    assert "Rencontre d'avril" in text(page) and "Tonnellerie Hôte" in text(page)
    assert 'value="peut-etre" checked' in text(page) and "<legend>Votre réponse</legend>" in text(
        page
    )
    assert page.headers["Cache-Control"] == "no-store"
    assert mportal.status(company) == (Answer.NO_ANSWER, 0)
    assert mportal.events == []


def test_answers_fill_the_meeting_then_wait_and_a_withdrawal_promotes(
    mportal: MeetingPortal,
) -> None:
    a, b, c = mportal.territory.companies[1:]
    done = mportal.client.post(
        mportal.form(a), data={"reponse": "oui", "personnes": "2", "note": "végétarien"}
    )
    assert (
        done.status_code == 200
        and "Inscription confirmée" in text(done)
        and "/parrainage/" in text(done)
    )
    waiting = mportal.client.post(mportal.form(b), data={"reponse": "oui", "personnes": "2"})
    assert "liste d'attente" in text(waiting) and "position 1" in text(waiting)
    assert mportal.status(b) == (Answer.WAITING, 2)
    too_many = mportal.client.post(mportal.form(c), data={"reponse": "oui", "personnes": "3"})
    assert too_many.status_code == 409 and "entre 1 et 2" in text(too_many)
    mportal.client.post(mportal.form(a), data={"reponse": "non"})
    assert mportal.status(b) == (Answer.REGISTERED, 2)
    assert [(e.name, e.company_id, e.answer) for e in mportal.events] == [
        (INVITATION_ANSWERED_EVENT, a, "registered"),
        (INVITATION_ANSWERED_EVENT, b, "waiting"),
        (INVITATION_ANSWERED_EVENT, a, "declined"),
    ]
    fields = meeting_event_fields(mportal.events[0])
    assert (
        fields["resource"]["prefect.resource.id"]
        == f"synergie.meeting.{mportal.territory.meeting_id}"
    )
    assert {r["prefect.resource.role"] for r in fields["related"]} == {"company", "contact"}


def test_answers_close_when_the_meeting_starts(mportal: MeetingPortal) -> None:
    company = mportal.territory.companies[1]
    mportal.clock.now = START
    page = mportal.client.get(mportal.link(company))
    assert "les réponses sont closes" in text(page) and "<form" not in text(page)
    refused = mportal.client.post(mportal.form(company), data={"reponse": "oui", "personnes": "1"})
    assert refused.status_code == 409 and mportal.status(company) == (Answer.NO_ANSWER, 0)


def test_a_tampered_link_gets_an_error_page(mportal: MeetingPortal) -> None:
    link = mportal.form(mportal.territory.companies[1])
    broken = link.replace("/reunion/v1.", "/reunion/v1.A")
    page = mportal.client.post(broken, data={"reponse": "oui"})
    assert page.status_code == 400 and "Lien non valide" in text(page)


def test_a_referral_creates_the_company_once_with_its_referrer(mportal: MeetingPortal) -> None:
    a = mportal.territory.companies[1]
    link = mportal.referral_link(a)
    assert mportal.client.get(link).status_code == 403  # not registered yet
    mportal.client.post(mportal.form(a), data={"reponse": "oui", "personnes": "1"})
    form = mportal.client.get(link)
    assert (
        form.status_code == 200 and "cette personne accepte d'être contactée" in text(form).lower()
    )
    values = {"company_name": "Cartonnerie Voisine", "siret": "123", "postcode": "21700", "commune": "Nuits",
              "contact_name": "Léa Voisin", "email": "pas-une-adresse", "phone": ""}  # fmt: skip
    refused = mportal.client.post(link, data=values)
    assert refused.status_code == 422
    assert (
        "SIRET invalide" in text(refused)
        and "adresse e-mail" in text(refused)
        and "Cochez la case" in text(refused)
    )
    assert 'value="Cartonnerie Voisine"' in text(refused)  # what was typed is kept
    values.update(
        siret=luhn_siret(9001), email="lea@example.org", phone="06 39 98 01 99", consent="oui"
    )
    done = mportal.client.post(link, data=values)
    assert done.status_code == 200 and "va recevoir une invitation" in text(done)
    again = mportal.client.post(link, data=values)
    assert "déjà invitée" in text(again)
    with Session(mportal.territory.engine) as session:
        [company] = session.exec(select(Company).where(Company.name == "Cartonnerie Voisine")).all()
        assert (company.source, company.referred_by_id) == (Source.REFERRAL, a)
        [referral] = session.exec(select(Referral)).all()
        contact = session.get(Contact, referral.contact_id)
        assert contact is not None and contact.phone == "+33639980199"
    assert [e.name for e in mportal.events][-1] == REFERRAL_CREATED_EVENT


def test_a_known_company_is_linked_not_duplicated(mportal: MeetingPortal) -> None:
    a = mportal.territory.companies[1]
    siret = luhn_siret(9002)
    with Session(mportal.territory.engine) as session:
        make_company(session, siret=siret, name="Déjà Connue", name_key="deja connue")
        session.commit()
    mportal.client.post(mportal.form(a), data={"reponse": "oui", "personnes": "1"})
    mportal.client.post(mportal.referral_link(a), data={
        "company_name": "Autre nom", "siret": siret, "postcode": "21700", "commune": "Nuits",
        "contact_name": "X", "email": "x@example.org", "consent": "oui"})  # fmt: skip
    with Session(mportal.territory.engine) as session:
        assert len(session.exec(select(Company).where(Company.siret == siret)).all()) == 1
        [referral] = session.exec(select(Referral)).all()
        assert session.get(Company, referral.company_id).name == "Déjà Connue"  # type: ignore[union-attr]
