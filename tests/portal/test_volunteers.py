"""The volunteers' call page: a digest's links, the outcome noted once, corrections, and what a link cannot reach."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import Activity, CallOutcome, CallTask, Company, Stage, StageChange, TimeEntry
from portal.app import create_app
from portal.events import CALL_LOGGED_EVENT, CallLoggedEvent, call_logged_event_fields
from synergie.calls.callers import add_caller
from synergie.calls.lists import call_link_expiry
from synergie.messaging.links import CallLink, call_log_url
from synergie.reporting.funnel import funnel
from synergie.settings import Settings
from tasks.calls import digests_for
from tests.factories import NOW, make_company, make_contact
from tests.portal.conftest import Clock

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TODAY = NOW.date()


@dataclass
class Desk:
    """Two callers with their calls of the day, the portal, and what it emitted."""

    engine: sa.Engine
    settings: Settings
    client: TestClient
    clock: Clock
    alice: int
    bob: int
    tasks: dict[str, int]  # company name → its open task
    events: list[CallLoggedEvent] = field(default_factory=list)

    def links(self, caller_id: int) -> dict[str, str]:
        """The call links of ``caller_id``'s digest e-mail, by company name, as paths."""
        with Session(self.engine) as session:
            digests = dict((c.id, d) for c, d in digests_for(session, self.settings, TODAY))
        text = digests[caller_id].email.text
        assert "Noter le résultat" in text
        return {line.company: urlsplit(line.log_url).path for line in digests[caller_id].lines}

    def task(self, name: str) -> CallTask:
        with Session(self.engine) as session:
            return session.get_one(CallTask, self.tasks[name])

    def company(self, name: str) -> Company:
        with Session(self.engine) as session:
            return session.exec(select(Company).where(Company.name == name)).one()

    def open_tasks(self, company_id: int | None) -> list[tuple[date, int]]:
        """The company's open call tasks as (due on, attempt)."""
        with Session(self.engine) as session:
            return [
                (t.due_on, t.attempt)
                for t in session.exec(
                    select(CallTask).where(
                        CallTask.company_id == company_id, col(CallTask.outcome).is_(None)
                    )
                )
            ]

    def history(self, company_id: int | None) -> list[tuple[Stage, Stage, str, str, datetime]]:
        """The company's stage changes, oldest first, as (from, to, why, by whom, when)."""
        with Session(self.engine) as session:
            return [
                (c.from_stage, c.to_stage, c.why, c.actor, c.at)
                for c in session.exec(
                    select(StageChange)
                    .where(StageChange.company_id == company_id)
                    .order_by(col(StageChange.id))
                )
            ]

    def call_hours(self, company_id: int | None) -> list[float]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(TimeEntry.hours).where(TimeEntry.company_id == company_id))
            )

    def snapshot(self) -> tuple[object, ...]:
        """Everything a call changes: tasks, stages and their history, the time ledger."""
        with Session(self.engine) as session:
            return (
                [(t.id, t.outcome, t.notes, t.callback_on, t.due_on) for t in session.exec(select(CallTask).order_by(col(CallTask.id)))],
                [(c.id, c.stage) for c in session.exec(select(Company).order_by(col(Company.id)))],
                len(session.exec(select(StageChange)).all()),
                len(session.exec(select(TimeEntry)).all()),
            )  # fmt: skip


@pytest.fixture
def desk(engine: sa.Engine, settings: Settings) -> Iterator[Desk]:
    tasks: dict[str, int] = {}
    with Session(engine) as session:
        alice = add_caller(
            session=session, name="Alice", phone=None, email="alice@example.org", per_day=5
        )
        bob = add_caller(
            session=session, name="Bob", phone=None, email="bob@example.org", per_day=5
        )
        for index, (name, caller) in enumerate(
            [("Tonnellerie Meunier", alice), ("Scierie Vallet", alice), ("Cartonnerie Roy", alice),
             ("Fromagerie Brun", bob)]
        ):  # fmt: skip
            company = make_company(session, stage=Stage.CONTACTED, name=name, name_key=name.lower())
            contact = make_contact(
                session, company, phone=f"+3363998010{index}", name=f"Contact {index}"
            )
            task = CallTask(company_id=company.id, contact_id=contact.id, caller_id=caller.id,  # type: ignore[arg-type]
                            due_on=TODAY, assigned_on=TODAY, created_at=NOW)  # fmt: skip
            session.add(task)
            session.flush()
            tasks[name] = task.id  # type: ignore[assignment]
        session.commit()
        ids = alice.id, bob.id
    clock = Clock()
    events: list[CallLoggedEvent] = []
    app = create_app(settings=settings, engine=engine, emit=lambda e: None, clock=clock,
                     emit_call=events.append)  # fmt: skip
    with TestClient(app) as client:
        yield Desk(engine, settings, client, clock, ids[0], ids[1], tasks, events)  # type: ignore[arg-type]


def test_digest_links_open_each_call_page(desk: Desk) -> None:
    links = desk.links(desk.alice)
    assert set(links) == {"Tonnellerie Meunier", "Scierie Vallet", "Cartonnerie Roy"}
    page = desk.client.get(links["Scierie Vallet"])
    assert page.status_code == 200
    assert "Scierie Vallet" in page.text and "Tonnellerie" not in page.text
    assert 'href="tel:+33639980101"' in page.text
    assert "Proposer une rencontre" in page.text  # the talking points
    assert page.headers["Cache-Control"] == "no-store"


def test_an_outcome_is_logged_once_like_the_cli(desk: Desk) -> None:
    path = desk.links(desk.alice)["Tonnellerie Meunier"]
    answer = desk.client.post(path, data={"resultat": "interested", "notes": "Rappeler la DG"})
    assert answer.status_code == 200 and "noté, merci" in answer.text
    task = desk.task("Tonnellerie Meunier")
    assert task.outcome == CallOutcome.INTERESTED and task.notes == "Rappeler la DG"
    assert task.logged_by == f"caller:{desk.alice}"
    assert desk.company("Tonnellerie Meunier").stage == Stage.CALLED
    assert [e.outcome for e in desk.events] == ["interested"]
    before = desk.snapshot()
    again = desk.client.post(path, data={"resultat": "refused"})
    assert again.status_code == 200 and "déjà noté" in again.text
    assert 'name="correction" value="1"' in again.text
    assert desk.snapshot() == before
    assert len(desk.events) == 1
    with Session(desk.engine) as session:
        hours = session.exec(
            select(TimeEntry.hours).where(TimeEntry.activity == Activity.CALL)
        ).all()
    assert hours == [round(desk.settings.call_minutes / 60, 4)]


def test_a_callback_then_its_correction_takes_it_back_and_keeps_the_history(desk: Desk) -> None:
    path = desk.links(desk.alice)["Scierie Vallet"]
    on = TODAY + timedelta(days=3)
    desk.client.post(path, data={"resultat": "callback", "rappel": on.isoformat()})
    company_id = desk.company("Scierie Vallet").id
    assert desk.open_tasks(company_id) == [(on, 1)]
    desk.clock.now = NOW + timedelta(minutes=5)
    answer = desk.client.post(path, data={"resultat": "no-answer", "correction": "1"})
    assert answer.status_code == 200 and "Correction enregistrée" in answer.text
    # The callback's follow-up is gone, no-answer's next try is there instead; its stage move
    # is taken back by a new change, not erased; the call's time is booked once.
    assert desk.company("Scierie Vallet").stage == Stage.CONTACTED
    assert desk.open_tasks(company_id) == [(date(2026, 11, 3), 2)]
    actor = f"caller:{desk.alice}"
    callback_move = (Stage.CONTACTED, Stage.CALLED, "appel : à rappeler", actor, NOW)
    taken_back = (
        Stage.CALLED, Stage.CONTACTED,
        "correction : appel noté « à rappeler » par erreur, corrigé en « pas de réponse »",
        actor, NOW + timedelta(minutes=5),
    )  # fmt: skip
    assert desk.history(company_id) == [callback_move, taken_back]
    assert desk.call_hours(company_id) == [round(desk.settings.call_minutes / 60, 4)]
    with Session(desk.engine) as session:
        [called] = [step for step in funnel(session=session) if step.stage == Stage.CALLED]
    assert called.reached == 0  # a move taken back does not count in the programme's funnel
    # Correcting back to the first answer gives the state a first answer would have given,
    # with every step of it in the history.
    desk.clock.now = NOW + timedelta(minutes=9)
    desk.client.post(
        path, data={"resultat": "callback", "rappel": on.isoformat(), "correction": "1"}
    )
    assert desk.company("Scierie Vallet").stage == Stage.CALLED
    assert desk.open_tasks(company_id) == [(on, 1)]
    assert desk.history(company_id) == [
        callback_move, taken_back,
        (Stage.CONTACTED, Stage.CALLED, "appel : à rappeler", actor, NOW + timedelta(minutes=9)),
    ]  # fmt: skip
    assert len(desk.call_hours(company_id)) == 1
    assert [e.corrected for e in desk.events] == [False, True, True]


def test_corrections_at_the_same_instant_take_back_only_what_stands(desk: Desk) -> None:
    # The clock does not move: every change is at the same instant, by the same caller.
    path = desk.links(desk.alice)["Tonnellerie Meunier"]
    company_id = desk.company("Tonnellerie Meunier").id
    desk.client.post(path, data={"resultat": "refused"})
    for outcome, stage in (("wrong-number", Stage.CONTACTED), ("reached", Stage.CALLED),
                           ("refused", Stage.DECLINED), ("reached", Stage.CALLED)):  # fmt: skip
        answer = desk.client.post(path, data={"resultat": outcome, "correction": "1"})
        assert answer.status_code == 200, answer.text
        assert desk.company("Tonnellerie Meunier").stage == stage
    moves = [(before, after) for before, after, *_ in desk.history(company_id)]
    assert moves == [
        (Stage.CONTACTED, Stage.DECLINED), (Stage.DECLINED, Stage.CONTACTED),  # refused, taken back
        (Stage.CONTACTED, Stage.CALLED),  # reached
        (Stage.CALLED, Stage.CONTACTED), (Stage.CONTACTED, Stage.DECLINED),  # → refused
        (Stage.DECLINED, Stage.CONTACTED), (Stage.CONTACTED, Stage.CALLED),  # → reached
    ]  # fmt: skip


def test_a_correction_is_refused_once_the_company_moved_on(desk: Desk) -> None:
    path = desk.links(desk.alice)["Cartonnerie Roy"]
    desk.client.post(path, data={"resultat": "interested"})
    with Session(desk.engine) as session:
        company = session.exec(select(Company).where(Company.name == "Cartonnerie Roy")).one()
        from models.companies import move_company

        move_company(session=session, company=company, target=Stage.DECLINED, why="test",
                     actor="staff:test", now=NOW + timedelta(hours=1))  # fmt: skip
        session.commit()
    before = desk.snapshot()
    answer = desk.client.post(path, data={"resultat": "refused", "correction": "1"})
    assert answer.status_code == 409
    assert "Correction impossible" in answer.text and "a été modifié" in answer.text
    assert desk.snapshot() == before


def test_a_link_reaches_neither_another_company_nor_another_callers_task(desk: Desk) -> None:
    before = desk.snapshot()
    mine = desk.links(desk.alice)["Tonnellerie Meunier"]
    token = mine.rsplit("/", 1)[1]
    version, payload, tag = token.split(".")
    # Any changed character, in the ids or the tag, breaks the signature.
    for forged in (f"{version}.{payload[:-2]}AA.{tag}", f"{version}.{payload}.{tag[:-2]}AA"):
        answer = desk.client.post(f"/appel/{forged}", data={"resultat": "refused"})
        assert answer.status_code == 400 and "Lien non valide" in answer.text
    # A genuine link naming Bob's task as Alice's, or Alice's task with another company: refused.
    bobs_task = desk.tasks["Fromagerie Brun"]
    fromagerie = desk.company("Fromagerie Brun").id
    expires = call_link_expiry(TODAY, 3)
    for link in (
        CallLink(bobs_task, desk.alice, fromagerie),
        CallLink(desk.tasks["Tonnellerie Meunier"], desk.alice, fromagerie),
        CallLink(
            desk.tasks["Tonnellerie Meunier"], desk.bob, desk.company("Tonnellerie Meunier").id
        ),
    ):
        path = urlsplit(call_log_url(desk.settings, link, expires_at=expires)).path
        assert desk.client.get(path).status_code == 403
        answer = desk.client.post(path, data={"resultat": "refused"})
        assert answer.status_code == 403 and "Appel introuvable" in answer.text
        assert "Fromagerie" not in answer.text
    assert desk.snapshot() == before
    assert desk.events == []


def test_a_task_given_to_another_caller_is_out_of_the_first_ones_reach(desk: Desk) -> None:
    path = desk.links(desk.alice)["Scierie Vallet"]
    with Session(desk.engine) as session:
        task = session.get_one(CallTask, desk.tasks["Scierie Vallet"])
        task.caller_id = desk.bob  # the next day's list gave the call to Bob
        session.add(task)
        session.commit()
    assert desk.client.post(path, data={"resultat": "reached"}).status_code == 403
    assert desk.task("Scierie Vallet").outcome is None


def test_the_link_expires_days_after_the_call_day(desk: Desk) -> None:
    path = desk.links(desk.alice)["Scierie Vallet"]
    desk.clock.now = call_link_expiry(TODAY, desk.settings.call_link_days) - timedelta(minutes=1)
    assert desk.client.get(path).status_code == 200
    desk.clock.now += timedelta(minutes=2)
    answer = desk.client.post(path, data={"resultat": "reached"})
    assert answer.status_code == 400 and "expiré" in answer.text
    assert desk.task("Scierie Vallet").outcome is None


def test_a_callback_without_a_date_or_an_unknown_outcome_changes_nothing(desk: Desk) -> None:
    path = desk.links(desk.alice)["Scierie Vallet"]
    before = desk.snapshot()
    assert "Date manquante" in desk.client.post(path, data={"resultat": "callback"}).text
    assert "Résultat manquant" in desk.client.post(path, data={"resultat": "drop tables"}).text
    assert desk.snapshot() == before


def test_the_event_names_the_company_and_its_outcome_for_the_visits_trigger() -> None:
    event = CallLoggedEvent(company_id=7, company_siret="12345678900011", task_id=3, caller_id=2,
                            outcome="interested", stage="called", occurred=NOW)  # fmt: skip
    fields = call_logged_event_fields(event)
    assert fields["event"] == CALL_LOGGED_EVENT == "synergie.call.logged"
    assert fields["resource"] == {
        "prefect.resource.id": "synergie.company.7",
        "synergie.outcome": "interested",
    }
    assert fields["payload"]["company_siret"] == "12345678900011"
    assert re.fullmatch(r"synergie\.caller\.2", fields["related"][0]["prefect.resource.id"])
