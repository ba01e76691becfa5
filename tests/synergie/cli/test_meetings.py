"""The ``meetings`` commands through Typer's runner, the flows in-process on the test's Prefect harness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import typer
from sqlmodel import Session, select
from typer.testing import CliRunner

from models import Answer, Company, Meeting, MeetingStatus, Registration, Stage, TimeEntry
from models.db import make_engine, session_scope
from synergie.cli.meetings import meetings_app
from synergie.meetings.registrations import lock_meeting, record_answer
from synergie.settings import Settings
from tests.factories import make_company, make_contact

app = typer.Typer()
app.add_typer(meetings_app, name="meetings")
runner = CliRunner()


def calendars(settings: Settings) -> list[bytes]:
    """The text/calendar parts of every e-mail written to the file outbox."""
    found = []
    for path in sorted((settings.outbox_dir / "email").glob("*.eml")):
        for part in message_from_bytes(path.read_bytes()).walk():
            if part.get_content_type() == "text/calendar":
                found.append(part.get_payload(decode=True))
    return found


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["meetings", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def visited(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three visited companies with a contact each; the first hosts."""
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    sirets = []
    with session_scope(engine) as session:
        for number in range(3):
            company = make_company(session, stage=Stage.VISITED, name=f"Visitée {number}",
                                   address="1 rue de la Gare", commune="Nuits-Saint-Georges")  # fmt: skip
            make_contact(session, company, phone="+33639980123")
            sirets.append(company.siret)
    engine.dispose()
    return sirets  # type: ignore[return-value]


def test_plan_invite_answer_sync_move_and_attend(
    prefect_harness: None, sqlite_settings: Settings, visited: list[str]
) -> None:
    at = (datetime.now(UTC) + timedelta(days=40)).astimezone(sqlite_settings.tz)
    out = invoke("add", "--title", "Rencontre de printemps", "--at", f"{at:%Y-%m-%dT18:00}",
                 "--host", visited[0], "--capacity", "2", "--per-company", "1")  # fmt: skip
    assert "Rencontre n° 1 prévue" in out and "Visitée 0" in out
    assert "3 invitation(s) nouvelle(s)" in invoke("invite", "1", "--dry-run")
    out = invoke("invite", "1")
    assert "3 entreprise(s) invitée(s)" in out and "3 e-mail(s) envoyé(s)" in out
    assert "0 invitation(s) nouvelle(s)" in invoke("invite", "1")
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        lock_meeting(session, 1)
        meeting = session.get(Meeting, 1)
        for registration in session.exec(select(Registration).order_by(Registration.id)).all():  # type: ignore[arg-type]
            record_answer(session=session, meeting=meeting, registration=registration, answer=Answer.REGISTERED,  # type: ignore[arg-type]
                          people=1, note=None, contact_id=None, now=datetime.now(UTC))  # fmt: skip
    out = invoke("sync", "1")
    assert "3 confirmation(s)" in out and "3 e-mail(s) envoyé(s)" in out
    assert "0 confirmation(s)" in invoke("sync")  # nothing twice
    shown = invoke("show", "1")
    assert "Inscrite (2)" in shown and "En liste d'attente (1)" in shown
    invoke("reschedule", "1", "--at", f"{at + timedelta(days=7):%Y-%m-%dT18:00}")
    moved = [c for c in calendars(sqlite_settings) if b"SEQUENCE:1\r\n" in c]
    assert len(moved) == 3  # two registered, one waiting
    with session_scope(engine) as session:
        meeting = session.get(Meeting, 1)
        meeting.starts_at = datetime.now(UTC) - timedelta(hours=3)  # type: ignore[union-attr]
        meeting.ends_at = datetime.now(UTC) - timedelta(hours=1)  # type: ignore[union-attr]
    out = invoke("attendance", "1", "--present", visited[0], "--present", visited[1])
    assert "2 entreprise(s) présente(s)" in out and "10 h au registre" in out
    with Session(engine) as session:
        assert session.get(Meeting, 1).status == MeetingStatus.HELD  # type: ignore[union-attr]
        stages = {c.siret: c.stage for c in session.exec(select(Company))}
        assert stages[visited[0]] == Stage.PARTICIPANT and stages[visited[2]] == Stage.VISITED
        assert [e.hours for e in session.exec(select(TimeEntry))] == [10]
    engine.dispose()


def test_errors_are_one_french_line(sqlite_settings: Settings) -> None:
    from synergie.cli.common import CliError

    with pytest.raises(CliError, match="Aucune rencontre n° 9"):
        runner.invoke(app, ["meetings", "show", "9"], catch_exceptions=False)
    with pytest.raises(CliError, match="date illisible"):
        runner.invoke(
            app, ["meetings", "add", "--title", "X", "--at", "demain"], catch_exceptions=False
        )


def test_cancel_sends_method_cancel(
    prefect_harness: None, sqlite_settings: Settings, visited: list[str]
) -> None:
    at = (datetime.now(UTC) + timedelta(days=40)).astimezone(sqlite_settings.tz)
    invoke(
        "add", "--title", "Rencontre", "--at", f"{at:%Y-%m-%dT18:00}", "--place", "Salle des fêtes"
    )
    invoke("invite", "1")
    assert "3 annulation(s) envoyée(s)" in invoke("cancel", "1")
    cancels = [c for c in calendars(sqlite_settings) if b"METHOD:CANCEL" in c]
    assert len(cancels) == 3


def test_removing_a_company_sends_the_cancel_of_its_own_copy_once(
    prefect_harness: None, sqlite_settings: Settings, visited: list[str]
) -> None:
    at = (datetime.now(UTC) + timedelta(days=40)).astimezone(sqlite_settings.tz)
    invoke(
        "add", "--title", "Rencontre", "--at", f"{at:%Y-%m-%dT18:00}", "--place", "Salle des fêtes"
    )
    invoke("invite", "1")
    out = invoke("invite", "1", "--remove", visited[2])
    assert "1 annulation(s) d'agenda" in out and "1 e-mail(s) envoyé(s)" in out
    assert "0 invitation(s) nouvelle(s)" in invoke("invite", "1", "--remove", visited[2])
    [cancel] = [c for c in calendars(sqlite_settings) if b"METHOD:CANCEL" in c]  # once
    assert b"SEQUENCE:1\r\n" in cancel and cancel.count(b"ATTENDEE") == 1
