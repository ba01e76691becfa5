"""The ``staff`` and ``visits`` commands through Typer's test runner, on a fresh SQLite database."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import typer
from sqlmodel import Session, select
from typer.testing import CliRunner

from models import Company, Contact, StaffMember, Stage, TimeEntry, Visit, VisitStatus
from models.db import make_engine, session_scope
from synergie.cli.common import CliError
from synergie.cli.visits import staff_app, visits_app
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff, book_visit, propose
from tests.factories import make_interested_company

app = typer.Typer()
app.add_typer(staff_app, name="staff")
app.add_typer(visits_app, name="visits")
runner = CliRunner()


@pytest.fixture
def company(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Company:
    """An interested company and one staff member, in the test's SQLite database."""
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        found = make_interested_company(session)
    engine.dispose()
    return found


def booked(settings: Settings, company: Company) -> Visit:
    """Book the company's earliest visit directly, as a run of the visits flow would."""
    engine = make_engine(settings.db_url)
    with session_scope(engine) as session:
        row = session.get(Company, company.id)
        result = book_visit(session=session, settings=settings, templates=MailTemplates(),
                            company=row, now=datetime.now(UTC), actor="test")  # type: ignore[arg-type]  # fmt: skip
    engine.dispose()
    return result.visit


def rows(settings: Settings, model: type) -> list:  # type: ignore[type-arg]
    engine = make_engine(settings.db_url)
    with Session(engine) as session:
        found = list(session.exec(select(model)))
    engine.dispose()
    return found


def test_staff_add_and_refusal(sqlite_settings: Settings) -> None:
    result = runner.invoke(app, ["staff", "add", "Jean Dupont", "--email", "jean@example.org",
                                 "--phone", "06 12 34 56 78"])  # fmt: skip
    assert result.exit_code == 0, result.output
    [member] = rows(sqlite_settings, StaffMember)
    assert (member.name, member.phone) == ("Jean Dupont", "+33612345678")
    assert member.weekly_hours["0"] == [["09:00", "12:30"], ["13:30", "17:30"]]
    refused = runner.invoke(app, ["staff", "add", "X", "--email", "pas-une-adresse"])
    assert isinstance(refused.exception, CliError)
    assert len(rows(sqlite_settings, StaffMember)) == 1


def test_book_with_company_only_prints_three_proposals(
    sqlite_settings: Settings, company: Company
) -> None:
    result = runner.invoke(app, ["visits", "book", "--company", company.siret])  # type: ignore[list-item]
    assert result.exit_code == 0, result.output
    assert result.output.count("--slot") == 3
    assert rows(sqlite_settings, Visit) == []
    alone = runner.invoke(app, ["visits", "book", "--slot", "2026-11-12T10:00"])
    assert isinstance(alone.exception, CliError)


def test_book_refuses_a_weekend_slot_before_prefect(
    sqlite_settings: Settings, company: Company
) -> None:
    result = runner.invoke(app, ["visits", "book", "--company", company.siret, "--slot", "2030-01-05T10:00"])  # type: ignore[list-item]  # fmt: skip
    assert isinstance(result.exception, CliError) and "week-end" in str(result.exception)
    assert rows(sqlite_settings, Visit) == []


@pytest.mark.usefixtures("prefect_harness")
def test_book_a_chosen_slot_runs_the_flow(sqlite_settings: Settings, company: Company) -> None:
    engine = make_engine(sqlite_settings.db_url)
    with Session(engine) as session:
        slot = propose(session=session, settings=sqlite_settings, now=datetime.now(UTC))[1]
    engine.dispose()
    local = f"{slot.visit_start.astimezone(sqlite_settings.tz):%Y-%m-%dT%H:%M}"
    result = runner.invoke(app, ["visits", "book", "--company", company.siret, "--slot", local])  # type: ignore[list-item]
    assert result.exit_code == 0, result.output
    [visit] = rows(sqlite_settings, Visit)
    assert visit.starts_at == slot.visit_start
    assert len(list((sqlite_settings.outbox_dir / "email").glob("*.eml"))) == 1


def reply_file(settings: Settings, uid: str, attendee: str, partstat: str = "TENTATIVE"):  # type: ignore[no-untyped-def]
    ics = settings.data_dir / "reponse.ics"
    ics.write_bytes(
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//FR\r\nMETHOD:REPLY\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:20261103T080000Z\r\n"
            f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ).encode()
    )
    return ics


def invitee(settings: Settings, visit: Visit) -> str:
    [contact] = [c for c in rows(settings, Contact) if c.id == visit.contact_id]
    return str(contact.email)


def test_a_reply_from_a_stranger_is_refused_and_changes_nothing(
    sqlite_settings: Settings, company: Company
) -> None:
    # Issue 9, item 7: a DECLINED reply from anyone but the invitee freed the slot.
    visit = booked(sqlite_settings, company)
    assert not re.fullmatch(r"visite-\d+@.*", visit.uid)  # not sequential: cannot be guessed
    ics = reply_file(sqlite_settings, visit.uid, "intrus@example.net", "DECLINED")
    result = runner.invoke(app, ["visits", "reply", str(ics)])
    assert isinstance(result.exception, CliError)
    assert "intrus@example.net" in str(result.exception)
    assert "n'est pas la personne invitée" in str(result.exception)
    [row] = rows(sqlite_settings, Visit)
    assert (row.status, row.partstat, row.sequence) == (VisitStatus.BOOKED, "needs-action", 0)
    [after] = [c for c in rows(sqlite_settings, Company) if c.id == company.id]
    assert after.stage == Stage.VISIT_SCHEDULED
    # The invitee's own answer, whatever the case of the address, still counts.
    ics = reply_file(
        sqlite_settings, visit.uid, invitee(sqlite_settings, visit).upper(), "DECLINED"
    )
    assert runner.invoke(app, ["visits", "reply", str(ics)]).exit_code == 0
    [row] = rows(sqlite_settings, Visit)
    assert row.status == VisitStatus.CANCELLED


def test_reply_cancel_and_done(sqlite_settings: Settings, company: Company) -> None:
    visit = booked(sqlite_settings, company)
    ics = reply_file(sqlite_settings, visit.uid, invitee(sqlite_settings, visit))
    result = runner.invoke(app, ["visits", "reply", str(ics)])
    assert result.exit_code == 0, result.output
    assert "provisoire" in result.output
    garbage = sqlite_settings.data_dir / "faux.ics"
    garbage.write_text("bonjour")
    assert isinstance(runner.invoke(app, ["visits", "reply", str(garbage)]).exception, CliError)

    result = runner.invoke(app, ["visits", "cancel", company.siret])  # type: ignore[list-item]
    assert result.exit_code == 0, result.output
    emails = list((sqlite_settings.outbox_dir / "email").glob("*.eml"))
    assert any("method=CANCEL" in path.read_text() for path in emails)
    [row] = rows(sqlite_settings, Visit)
    assert (row.status, row.sequence) == (VisitStatus.CANCELLED, 1)
    missing = runner.invoke(app, ["visits", "done", company.siret, "--notes", "x"])  # type: ignore[list-item]
    assert isinstance(missing.exception, CliError)

    booked(sqlite_settings, company)
    result = runner.invoke(app, ["visits", "done", company.siret, "--notes", "Palettes"])  # type: ignore[list-item]
    assert result.exit_code == 0, result.output
    [entry] = rows(sqlite_settings, TimeEntry)
    assert entry.hours == 2.0
    assert [c.stage for c in rows(sqlite_settings, Company)] == [Stage.VISITED]
    listing = runner.invoke(app, ["visits", "list"])
    assert listing.exit_code == 0 and "faite" in listing.output
