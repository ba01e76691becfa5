"""Fixtures for portal tests: the app on a real database, a fake event emitter, people to unsubscribe."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import Channel, Company, OptOut, Stage, StageChange
from models.db import make_engine
from portal.app import create_app
from portal.events import OptOutEvent
from synergie.messaging.links import unsubscribe_url
from synergie.settings import Settings
from tests.factories import NOW, make_company, make_contact

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx is what we ship and it works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@dataclass
class Person:
    """A contact with an e-mail address and a mobile number, at a company of the listing."""

    company_id: int
    contact_id: int
    public_id: str
    email: str
    company_name: str


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Portal:
    """The portal app on the test's database, with what it emitted and helpers to read the database."""

    client: TestClient
    engine: sa.Engine
    settings: Settings
    clock: Clock
    events: list[OptOutEvent] = field(default_factory=list)

    def path(self, public_id: str, channel: Channel = Channel.EMAIL) -> str:
        return unsubscribe_path(self.settings, public_id, channel)

    def opt_outs(self) -> list[tuple[int, Channel, str, datetime]]:
        return opt_out_rows(self.engine)

    def stage(self, company_id: int) -> Stage:
        with Session(self.engine) as session:
            return Stage(session.exec(select(Company.stage).where(Company.id == company_id)).one())

    def add_person(self, *, company_name: str = "Tonnellerie Meunier", **contact: object) -> Person:
        return add_person(self.engine, company_name=company_name, **contact)

    def stage_changes(self) -> list[tuple[int, Stage, Stage, str, datetime]]:
        with Session(self.engine) as session:
            rows = session.exec(select(StageChange).order_by(StageChange.id)).all()  # type: ignore[arg-type]
            return [(r.company_id, r.from_stage, r.to_stage, r.actor, r.at) for r in rows]


def unsubscribe_path(settings: Settings, public_id: str, channel: Channel = Channel.EMAIL) -> str:
    """The path of the unsubscribe link a message to ``public_id`` would carry."""
    return urlsplit(unsubscribe_url(settings, public_id, channel)).path


def opt_out_rows(engine: sa.Engine) -> list[tuple[int, Channel, str, datetime]]:
    """Every opt-out row as (contact id, channel, source, time), oldest first."""
    with Session(engine) as session:
        rows = session.exec(select(OptOut).order_by(OptOut.id)).all()  # type: ignore[arg-type]
        return [(row.contact_id, row.channel, row.source, row.at) for row in rows]


def add_person(
    engine: sa.Engine, *, company_name: str = "Tonnellerie Meunier", **contact: object
) -> Person:
    """Store a company and one contact (e-mail and mobile) and describe them."""
    with Session(engine, expire_on_commit=False) as session:
        company = make_company(session, name=company_name, name_key=company_name.lower())
        fields: dict[str, object] = {"phone": "+33639980101", **contact}
        person = make_contact(session, company, **fields)
        session.commit()
    return Person(
        company_id=company.id,  # type: ignore[arg-type]
        contact_id=person.id,  # type: ignore[arg-type]
        public_id=person.public_id,
        email=person.email or "",
        company_name=company.name,
    )


@pytest.fixture
def person(engine: sa.Engine) -> Person:
    return add_person(engine)


def _portal_factory(engine: sa.Engine, settings: Settings) -> Iterator[Callable[..., Portal]]:
    clients: list[TestClient] = []

    def build(emit: Callable[[OptOutEvent], None] | None = None) -> Portal:
        clock = Clock()
        events: list[OptOutEvent] = []
        app = create_app(settings=settings, engine=engine, emit=emit or events.append, clock=clock)
        client = TestClient(app)
        clients.append(client)
        return Portal(client=client, engine=engine, settings=settings, clock=clock, events=events)

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def make_portal(engine: sa.Engine, settings: Settings) -> Iterator[Callable[..., Portal]]:
    """Build a portal on SQLite and PostgreSQL with a given emitter (default: a recording one)."""
    yield from _portal_factory(engine, settings)


@pytest.fixture
def portal(make_portal: Callable[..., Portal]) -> Portal:
    """The portal with a recording emitter and a hand-moved clock, on SQLite and PostgreSQL."""
    return make_portal()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_portal(sqlite_engine: sa.Engine, sqlite_settings: Settings) -> Iterator[Portal]:
    """The portal on SQLite only, for tests about pages rather than the database."""
    for build in _portal_factory(sqlite_engine, sqlite_settings):
        yield build()
