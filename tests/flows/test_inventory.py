"""The inventory flows under a Prefect test API: the questionnaire at visit close, the officer's review once, acceptance."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from flows.inventory_accept import InventoryAcceptParams, inventory_accept
from flows.inventory_review import inventory_review
from flows.visit_done import VisitDoneParams, visit_done
from flows.visits import VisitsParams, visits
from models import Activity, Company, FlowSubmission, Stage, TimeEntry
from models.db import make_engine, session_scope
from synergie.inventory.rows import validate_flow
from synergie.inventory.store import replace_portal_flows
from synergie.settings import Settings
from synergie.visits.lifecycle import add_staff
from tests.factories import NOW, make_interested_company

pytestmark = pytest.mark.usefixtures("prefect_harness")

CARDBOARD = {
    "direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
    "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
    "trips_per_month": "3", "km_per_trip": "360",
}  # fmt: skip


@pytest.fixture
def file_outbox(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        make_interested_company(session, name="Cartonnerie Test")
    engine.dispose()
    return sqlite_settings


def emails(settings: Settings) -> list[str]:
    return [path.read_text() for path in sorted((settings.outbox_dir / "email").glob("*.eml"))]


def test_closing_reviewing_and_accepting_an_inventory(file_outbox: Settings) -> None:
    visits(VisitsParams(dry_run=False))
    engine = make_engine(file_outbox.db_url)
    with Session(engine) as session:
        company = session.exec(select(Company)).one()
    closed = visit_done(VisitDoneParams(siret=company.siret or "", notes="Chutes de carton"))
    assert closed["questionnaire"] == "en file" and closed["email_sent"] == 1
    assert sum("/inventaire/" in mail for mail in emails(file_outbox)) == 1

    # The company answers through the portal (as the page does), then the trigger's run and the
    # schedule's run both pass: the officer hears of it once, the review is booked once.
    with session_scope(engine) as session:
        row = session.get(Company, company.id)
        contact_id = None
        replace_portal_flows(session=session, company=row, contact_id=contact_id,  # type: ignore[arg-type]
                             rows=[validate_flow(CARDBOARD)], now=NOW)  # fmt: skip
    triggered = inventory_review(company_id=company.id)
    scheduled = inventory_review()
    assert (triggered["reviewed"], triggered["email_sent"]) == (1, 1)
    assert (scheduled["reviewed"], scheduled["email_sent"]) == (0, 0)
    summaries = [m for m in emails(file_outbox) if "Inventaire des flux re" in m]
    assert len(summaries) == 1 and file_outbox.officer_email in summaries[0]
    with Session(engine) as session:
        ledger = session.exec(
            select(TimeEntry).where(TimeEntry.activity == Activity.FLOWS_COLLECTION)
        ).all()
        assert [e.hours for e in ledger] == [file_outbox.inventory_review_hours]
        assert session.exec(select(FlowSubmission)).one().reviewed_at is not None

    accepted = inventory_accept(InventoryAcceptParams(siret=company.siret or "", by="Claire"))
    assert accepted["stage"] == Stage.FLOWS_COLLECTED
    with Session(engine) as session:
        assert session.get(Company, company.id).stage == Stage.FLOWS_COLLECTED  # type: ignore[union-attr]
    engine.dispose()
    with pytest.raises(ValueError, match="siret"):
        InventoryAcceptParams(siret="123", by="Claire")
