"""The ``callers`` and ``calls`` commands through Typer's runner: French output, errors, effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import Caller, CallOutcome, CallTask, Contact, Stage, StageChange, TimeEntry
from models.db import make_engine
from synergie.calls.outcomes import correct_call
from synergie.cli.calls import callers_app, calls_app
from synergie.cli.common import CliError
from synergie.settings import Settings
from tests.factories import make_company, make_contact

app = typer.Typer()
app.add_typer(callers_app, name="callers")
app.add_typer(calls_app, name="calls")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output, result.exception


def test_callers_add_and_list(sqlite_settings: Settings) -> None:
    code, out, _ = run("callers", "add", "Alice Martin", "--phone", "06 11 11 11 11",
                       "--email", "alice@example.org", "--per-day", "4", "--days", "1,3,5")  # fmt: skip
    assert (
        code == 0 and "Appelant ajouté : Alice Martin" in out and "lundi, mercredi, vendredi" in out
    )
    code, out, _ = run("callers", "list")
    assert code == 0 and "Alice Martin" in out and "+33611111111" in out and "│ 4 " in out
    code, _, exc = run("callers", "add", "Bob", "--phone", "06", "--days", "lundi")
    assert code == 1 and isinstance(exc, CliError) and "jours invalides" in str(exc)
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert [c.name for c in session.exec(select(Caller))] == ["Alice Martin"]
    engine.dispose()


def test_callers_phone_is_stored_in_e164_or_refused_in_french(sqlite_settings: Settings) -> None:
    # Issue 9, item 3: "06 39 98 10 01" was stored as typed and Twilio refused To=0639981001.
    code, out, _ = run("callers", "add", "Camille", "--phone", "06 39 98 10 01")
    assert code == 0, out
    code, _, exc = run("callers", "add", "Dominique", "--phone", "06 39 98")
    assert code == 1 and isinstance(exc, CliError)
    assert "numéro de téléphone" in str(exc) and "+33639981001" in str(exc)
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert [(c.name, c.phone) for c in session.exec(select(Caller))] == [
            ("Camille", "+33639981001")
        ]
    engine.dispose()


@pytest.fixture
def company_siret(sqlite_settings: Settings) -> str:
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        company = make_company(session, stage=Stage.CONTACTED, name="Scierie Fictive")
        make_contact(session, company, phone="0601020304")
        siret = str(company.siret)
        session.commit()
    engine.dispose()
    return siret


def test_calls_log_applies_the_outcome(sqlite_settings: Settings, company_siret: str) -> None:
    code, out, _ = run(
        "calls",
        "log",
        company_siret,
        "--outcome",
        "interested",
        "--notes",
        "RDV à caler",
        "--by",
        "Anne",
    )
    assert code == 0 and "Scierie Fictive : intéressé" in out and "appelée" in out
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        task = session.exec(select(CallTask)).one()
        assert (task.outcome, task.notes, task.logged_by) == (
            "interested",
            "RDV à caler",
            "staff:Anne",
        )
        change = session.exec(select(StageChange)).one()
        assert (change.to_stage, change.actor) == (Stage.CALLED, "staff:Anne")
        assert session.exec(select(TimeEntry)).one().hours == 0.25
    engine.dispose()


def test_calls_log_errors_are_french_and_write_nothing(
    sqlite_settings: Settings, company_siret: str
) -> None:
    code, _, exc = run("calls", "log", company_siret, "--outcome", "callback")
    assert code == 1 and isinstance(exc, CliError) and "--on" in str(exc)
    code, _, exc = run("calls", "log", company_siret, "--outcome", "callback", "--on", "demain")
    assert code == 1 and isinstance(exc, CliError) and "AAAA-MM-JJ" in str(exc)
    code, out, _ = run("calls", "log", company_siret, "--outcome", "bof")
    assert code == 2
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert session.exec(select(CallTask)).all() == []
        assert session.exec(select(TimeEntry)).all() == []
    engine.dispose()


def test_calls_log_wrong_number(sqlite_settings: Settings, company_siret: str) -> None:
    code, out, _ = run("calls", "log", company_siret, "--outcome", "wrong-number", "--by", "Anne")
    assert code == 0 and "mauvais numéro" in out and "contactée" in out
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        assert session.exec(select(Contact)).one().phone_invalid_at is not None
        assert session.exec(select(StageChange)).all() == []
    engine.dispose()


@pytest.mark.usefixtures("prefect_harness")
def test_calls_remind_runs_the_flow(sqlite_settings: Settings, company_siret: str) -> None:
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        company_id = session.exec(select(Contact)).one().company_id
        session.add(StageChange(company_id=company_id, from_stage=Stage.LISTED, to_stage=Stage.CONTACTED,
                                at=datetime(2026, 11, 2, tzinfo=UTC), why="courrier", actor="test"))  # fmt: skip
        session.add(
            Caller(name="Alice", phone="0611111111", email="alice@example.org", days_available=[1])
        )
        session.commit()
    engine.dispose()
    code, out, exc = run("calls", "remind", "--day", "2026-11-30")
    assert exc is None and code == 0
    assert "Appels à passer" in out and "│      1 │" in out and "SMS envoyés" in out
    assert len(list((sqlite_settings.outbox_dir / "sms").glob("*.sms"))) == 1


def test_calls_log_after_a_correction_goes_on_from_the_corrected_state(
    sqlite_settings: Settings, company_siret: str
) -> None:
    code, out, _ = run("calls", "log", company_siret, "--outcome", "interested", "--by", "Anne")
    assert code == 0 and "appelée" in out
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:  # a volunteer's correction, as the call page makes it
        task = session.exec(select(CallTask)).one()
        assert task.logged_at is not None
        correct_call(session=session, task=task, outcome=CallOutcome.NO_ANSWER, on=None,
                     notes=None, actor="caller:1", now=task.logged_at + timedelta(minutes=3),
                     call_minutes=sqlite_settings.call_minutes)  # fmt: skip
        session.commit()
    code, out, _ = run("calls", "log", company_siret, "--outcome", "reached", "--by", "Anne")
    assert code == 0 and "Scierie Fictive : joint — étape appelée" in out
    with Session(engine) as session:
        history = session.exec(select(StageChange).order_by(col(StageChange.id))).all()
        assert [(c.from_stage, c.to_stage, c.why.split(" :")[0]) for c in history] == [
            (Stage.CONTACTED, Stage.CALLED, "appel"),
            (Stage.CALLED, Stage.CONTACTED, "correction"),
            (Stage.CONTACTED, Stage.CALLED, "appel"),
        ]
        tasks = session.exec(select(CallTask).order_by(col(CallTask.id))).all()
        assert [(t.outcome, t.attempt) for t in tasks] == [("no-answer", 1), ("reached", 2)]
        assert len(session.exec(select(TimeEntry)).all()) == 2  # two calls made, each booked once
    engine.dispose()
