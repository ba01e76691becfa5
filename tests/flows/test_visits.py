"""The visits and visit-reminders flows under a Prefect test API, with the file outboxes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from flows.visit_reminders import VisitRemindersParams, visit_reminders
from flows.visits import VisitsParams, visits
from models import Stage, Visit
from models.db import make_engine, session_scope
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff
from tests.factories import make_interested_company

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def file_outbox(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    monkeypatch.setenv("SYNERGIE_SMS_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        for _ in range(2):
            make_interested_company(session)
    engine.dispose()
    return sqlite_settings


def booked_visits(settings: Settings) -> list[Visit]:
    engine = make_engine(settings.db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(Visit)))
    engine.dispose()
    return rows


def test_dry_run_books_nothing(file_outbox: Settings) -> None:
    assert visits(VisitsParams()) == {"would_book": 2}
    assert booked_visits(file_outbox) == []
    assert not list((file_outbox.outbox_dir / "email").glob("*.eml"))


def test_visits_then_reminders_write_files_once(file_outbox: Settings) -> None:
    result = visits(VisitsParams(dry_run=False))
    assert result["booked"] == 2 and result["email_sent"] == 2
    emails = sorted((file_outbox.outbox_dir / "email").glob("*.eml"))
    assert len(emails) == 2
    raw = emails[0].read_text()
    assert "text/calendar; method=REQUEST" in raw and "invitation.ics" in raw
    rerun = visits(VisitsParams(dry_run=False))
    assert (rerun["booked"], rerun["email_sent"]) == (0, 0)
    assert len(list((file_outbox.outbox_dir / "email").glob("*.eml"))) == 2

    rows = booked_visits(file_outbox)
    days = {row.starts_at.astimezone(file_outbox.tz).date() for row in rows}
    day = min(days)
    expected = sum(1 for row in rows if row.starts_at.astimezone(file_outbox.tz).date() == day)
    params = VisitRemindersParams(day=day)
    sent = visit_reminders(params)
    assert (sent["enqueued"], sent["sms_sent"]) == (expected, expected)
    assert len(list((file_outbox.outbox_dir / "sms").glob("*.sms"))) == expected
    again = visit_reminders(params)
    assert (again["enqueued"], again["sms_sent"]) == (0, 0)
    assert len(list((file_outbox.outbox_dir / "sms").glob("*.sms"))) == expected
    engine = make_engine(file_outbox.db_url)
    with engine.connect() as connection:
        stages = connection.execute(sa.text("SELECT stage FROM company")).scalars().all()
    engine.dispose()
    assert set(stages) == {"visit_scheduled"}


def test_the_done_form_closes_the_visit_and_books_two_hours(file_outbox: Settings) -> None:
    from flows.visit_done import VisitDoneParams, visit_done
    from models import Company, TimeEntry, VisitStatus

    visits(VisitsParams(dry_run=False))
    engine = make_engine(file_outbox.db_url)
    with Session(engine) as session:
        siret = session.exec(select(Company.siret)).first()
    result = visit_done(VisitDoneParams(siret=siret or "", notes="Chutes de carton : 2 t/mois"))
    assert result["hours"] == 2.0
    with Session(engine) as session:
        company = session.exec(select(Company).where(Company.siret == siret)).one()
        visit = session.exec(select(Visit).where(Visit.company_id == company.id)).one()
        ledger = session.exec(select(TimeEntry).where(TimeEntry.company_id == company.id)).all()
    engine.dispose()
    assert company.stage == Stage.VISITED and visit.status == VisitStatus.DONE
    assert visit.notes == "Chutes de carton : 2 t/mois" and [e.hours for e in ledger] == [2.0]
    with pytest.raises(ValueError, match="siret"):
        VisitDoneParams(siret="123", notes="x")
