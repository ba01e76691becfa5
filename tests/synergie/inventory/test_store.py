"""The inventory's database verbs on SQLite and PostgreSQL: store, replace, accept, invite, review, import."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from models import (
    Activity,
    Company,
    Contact,
    FlowOrigin,
    FlowSubmission,
    MaterialFlow,
    Message,
    Stage,
    StageChange,
    TimeEntry,
)
from models.stages import StageTransitionError
from synergie.inventory.importing import import_flows
from synergie.inventory.questionnaire import (
    INVENTORY,
    invite_to_inventory,
    read_inventory_token,
    review_submissions,
)
from synergie.inventory.rows import FlowRejected, validate_flow
from synergie.inventory.store import (
    InventoryError,
    accept_inventory,
    add_flows,
    company_flows,
    replace_portal_flows,
)
from synergie.listing.reading import ListingFileError
from synergie.messaging.links import InvalidToken
from synergie.messaging.optouts import suppress
from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from tests.factories import NOW, make_company, make_contact, write_csv

CARDBOARD = {
    "direction": "sortant", "description": "chutes de carton", "waste_code": "150101",
    "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
    "trips_per_month": "3", "km_per_trip": "360",
}  # fmt: skip
PAPER = {
    "direction": "sortant", "description": "papier broyé", "waste_code": "20 01 01",
    "quantity": "150", "unit": "kg", "frequency": "semaine", "outlet": "collecteur",
}  # fmt: skip


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def visited(session: Session, **fields: object) -> tuple[Company, int]:
    company = make_company(session, stage=Stage.VISITED, **fields)
    contact = make_contact(session, company)
    session.commit()
    return company, contact.id  # type: ignore[return-value]


def flows(session: Session, company: Company) -> list[tuple[str, str, float]]:
    session.expire_all()
    return [(f.origin.value, f.description, f.monthly_quantity)
            for f in company_flows(session=session, company_id=company.id)]  # type: ignore[arg-type]  # fmt: skip


def test_flows_are_stored_with_their_monthly_quantity(session: Session) -> None:
    company, _ = visited(session)
    add_flows(session=session, company=company, rows=[validate_flow(CARDBOARD), validate_flow(PAPER)],
              origin=FlowOrigin.STAFF, actor="staff:test", now=NOW)  # fmt: skip
    session.commit()
    stored = session.exec(select(MaterialFlow).order_by(MaterialFlow.id)).all()  # type: ignore[arg-type]
    assert [(f.waste_code, f.hazardous, f.category) for f in stored] == [
        ("150101", False, "papier-carton"), ("200101", False, "papier-carton")]  # fmt: skip
    assert stored[1].monthly_quantity == pytest.approx(650)
    assert stored[0].created_at == NOW and stored[0].created_by == "staff:test"


def test_a_hazardous_code_is_stored_marked(session: Session) -> None:
    company, _ = visited(session)
    row = validate_flow({**CARDBOARD, "description": "huiles", "waste_code": "13 02 05*",
                         "unit": "L", "quantity": "200", "frequency": "an"})  # fmt: skip
    add_flows(
        session=session, company=company, rows=[row], origin=FlowOrigin.STAFF, actor="t", now=NOW
    )
    session.commit()
    stored = session.exec(select(MaterialFlow)).one()
    assert (stored.waste_code, stored.hazardous, stored.category) == (
        "130205",
        True,
        "huiles-graisses",
    )


def test_a_refused_row_among_good_ones_writes_nothing(session: Session) -> None:
    company, _ = visited(session)
    typed = [CARDBOARD, {**PAPER, "waste_code": "20 01 99 9"}, {**PAPER, "quantity": "-3"}]
    with pytest.raises(FlowRejected):
        add_flows(session=session, company=company, rows=[validate_flow(v) for v in typed],
                  origin=FlowOrigin.STAFF, actor="t", now=NOW)  # fmt: skip
    session.rollback()
    assert session.exec(select(sa.func.count()).select_from(MaterialFlow)).one() == 0


def test_a_new_portal_answer_replaces_the_previous_one_and_only_it(session: Session) -> None:
    company, contact_id = visited(session)
    add_flows(session=session, company=company, rows=[validate_flow(PAPER)],
              origin=FlowOrigin.STAFF, actor="staff:test", now=NOW)  # fmt: skip
    replace_portal_flows(session=session, company=company, contact_id=contact_id,
                         rows=[validate_flow(CARDBOARD)], now=NOW)  # fmt: skip
    session.commit()
    replace_portal_flows(session=session, company=company, contact_id=contact_id,
                         rows=[validate_flow({**CARDBOARD, "quantity": "3"}),
                               validate_flow({**PAPER, "direction": "sortant"})], now=NOW)  # fmt: skip
    session.commit()
    assert sorted(flows(session, company)) == [
        ("portal", "chutes de carton", 3.0), ("portal", "papier broyé", pytest.approx(650)),
        ("staff", "papier broyé", pytest.approx(650))]  # fmt: skip
    assert [s.rows for s in session.exec(select(FlowSubmission).order_by(FlowSubmission.id))] == [
        1,
        2,
    ]  # type: ignore[arg-type]


def test_a_replacement_that_fails_half_way_leaves_the_previous_answer(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company, contact_id = visited(session)
        replace_portal_flows(session=session, company=company, contact_id=contact_id,
                             rows=[validate_flow(CARDBOARD)], now=NOW)  # fmt: skip
        session.commit()
    with pytest.raises(sa.exc.IntegrityError), Session(engine) as session:
        # The old rows are deleted, then the insert fails (no such contact): one transaction.
        replace_portal_flows(session=session, company=company, contact_id=999_999,
                             rows=[validate_flow(PAPER)], now=NOW)  # fmt: skip
        session.commit()
    with Session(engine) as session:
        assert flows(session, company) == [("portal", "chutes de carton", 2.0)]
        assert session.exec(select(sa.func.count()).select_from(FlowSubmission)).one() == 1


def test_accepting_moves_a_visited_company_with_flows_to_flows_collected(session: Session) -> None:
    company, _ = visited(session)
    with pytest.raises(InventoryError, match="aucun flux"):
        accept_inventory(session=session, company=company, actor="staff:test", now=NOW)
    add_flows(session=session, company=company, rows=[validate_flow(CARDBOARD)],
              origin=FlowOrigin.STAFF, actor="t", now=NOW)  # fmt: skip
    change = accept_inventory(session=session, company=company, actor="staff:test", now=NOW)
    session.commit()
    assert (change.from_stage, change.to_stage) == (Stage.VISITED, Stage.FLOWS_COLLECTED)
    assert "1 flux" in change.why and company.stage == Stage.FLOWS_COLLECTED
    with pytest.raises(InventoryError, match="seul l'inventaire d'une entreprise visitée"):
        accept_inventory(session=session, company=company, actor="staff:test", now=NOW)
    assert len(session.exec(select(StageChange)).all()) == 1


def test_the_stage_machine_allows_flows_collected_only_after_visited() -> None:
    from models.stages import transition

    assert transition(Stage.VISITED, Stage.FLOWS_COLLECTED) == Stage.FLOWS_COLLECTED
    with pytest.raises(StageTransitionError):
        transition(Stage.VISIT_SCHEDULED, Stage.FLOWS_COLLECTED)


def test_the_questionnaire_link_is_queued_once_with_a_token_for_its_page(
    session: Session, settings: Settings
) -> None:
    company, contact_id = visited(session, name="Cartonnerie Test")
    args = {"session": session, "settings": settings, "templates": MailTemplates(),
            "company": company, "contact_id": contact_id, "now": NOW}  # fmt: skip
    assert invite_to_inventory(**args) is True
    assert invite_to_inventory(**args) is False  # the outbox key: one per company and contact
    session.commit()
    message = session.exec(select(Message)).one()
    assert message.step == f"inventaire-{company.id}" and message.contact_id == contact_id
    text = message.context["text"]  # type: ignore[index]
    assert "Cartonnerie Test" in message.context["subject"]  # type: ignore[index]
    link = next(word for word in text.split() if "/inventaire/" in word)
    claims = read_inventory_token(link.rsplit("/", 1)[1], settings=settings, now=NOW)
    assert claims.purpose == INVENTORY
    with pytest.raises(InvalidToken):  # an unsubscribe page would refuse it, and vice versa
        from synergie.messaging.links import read_token

        read_token(
            link.rsplit("/", 1)[1], key=settings.link_signing_key, purpose="unsubscribe", now=NOW
        )


def test_nothing_is_queued_for_a_suppressed_address(session: Session, settings: Settings) -> None:
    company, contact_id = visited(session)
    address = session.get(Contact, contact_id).email  # type: ignore[union-attr]
    suppress(session.connection(), address=address, channel="email", source="staff", now=NOW,  # type: ignore[arg-type]
             actor="staff:test", reason="courrier")  # fmt: skip
    assert invite_to_inventory(session=session, settings=settings, templates=MailTemplates(),
                               company=company, contact_id=contact_id, now=NOW) is False  # fmt: skip
    assert session.exec(select(Message)).all() == []


def test_each_submission_is_reviewed_once_with_its_hours(
    session: Session, settings: Settings
) -> None:
    company, contact_id = visited(session, name="Cartonnerie Test")
    replace_portal_flows(session=session, company=company, contact_id=contact_id,
                         rows=[validate_flow(CARDBOARD), validate_flow(PAPER)], now=NOW)  # fmt: skip
    session.commit()
    args = {"session": session, "settings": settings, "templates": MailTemplates(), "now": NOW,
            "actor": "flow:test"}  # fmt: skip
    reviewed = review_submissions(**args)
    session.commit()
    assert [(r.company, r.rows, r.hours, r.queued) for r in reviewed] == [
        ("Cartonnerie Test", 2, settings.inventory_review_hours, True)]  # fmt: skip
    assert review_submissions(**args) == []  # a second run (the schedule after the trigger)
    session.commit()
    message = session.exec(select(Message)).one()
    assert message.to_address == settings.officer_email
    assert "chutes de carton" in message.context["text"] and "15 01 01" in message.context["text"]  # type: ignore[index]
    assert "3 trajet(s)/mois de 360 km" in message.context["text"]  # type: ignore[index]
    entries = session.exec(select(TimeEntry)).all()
    assert [(e.activity, e.hours, e.company_id) for e in entries] == [
        (Activity.FLOWS_COLLECTION, 0.5, company.id)]  # fmt: skip


def test_a_run_for_one_company_leaves_the_others_to_theirs(
    session: Session, settings: Settings
) -> None:
    first, first_contact = visited(session)
    second, second_contact = visited(session)
    for company, contact in ((first, first_contact), (second, second_contact)):
        replace_portal_flows(session=session, company=company, contact_id=contact,
                             rows=[validate_flow(CARDBOARD)], now=NOW)  # fmt: skip
    session.commit()
    args = {"session": session, "settings": settings, "templates": MailTemplates(), "now": NOW,
            "actor": "flow:test"}  # fmt: skip
    assert [r.company for r in review_submissions(**args, company_id=second.id)] == [second.name]
    assert [r.company for r in review_submissions(**args)] == [first.name]


# --- import ---------------------------------------------------------------------------------


def test_an_import_keeps_good_rows_and_reports_bad_ones_formula_safe(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company, _ = visited(session)
    siret = company.siret
    text = (
        "SIRET;Sens;Matière;Code déchet;Quantité;Unité;Fréquence;Exutoire;Trajets par mois;Km par trajet\r\n"
        f"{siret};sortant;chutes de carton;15 01 01;2;t;mois;collecteur;3;360\r\n"
        f"{siret};sortant;papier broyé;20 01 01;150;kg;semaine;collecteur;;\r\n"
        f'{siret};sortant;=HYPERLINK("x");99 99 99;2;t;mois;collecteur;;\r\n'
        f"{siret};sortant;huiles;13 02 05;-200;L;an;collecteur;;\r\n"
        f"{siret};sortant;bidons;15 01 10;3;tonneaux;an;collecteur;;\r\n"
        "73282932100018;sortant;ferraille;17 04 05;1;t;mois;recyclage;;\r\n"
        "\r\n"
    )
    path = write_csv(tmp_path / "flux.csv", text, encoding="cp1252")
    report = import_flows(engine=engine, path=path, rejects_dir=tmp_path / "rapports",
                          actor="staff:test", now=NOW)  # fmt: skip
    assert (report.rows_read, report.imported, report.companies, report.rejected) == (6, 2, 1, 4)
    reasons = {r.line: r.reason for r in report.rejections}
    assert "Code déchet : « 99 99 99 » n'est pas un code de la liste européenne" in reasons[4]
    assert "Quantité : -200 est négatif" in reasons[5]
    assert "Unité : « tonneaux » n'est pas une valeur possible" in reasons[6]
    assert "aucune entreprise avec le SIRET 73282932100018" in reasons[7]
    assert report.rejects_path is not None and Path(report.rejects_path).name.startswith(
        "rejets-flux-"
    )
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as handle:
        cells = list(csv.reader(handle, delimiter=";"))
    assert cells[0] == ["ligne", "motif", "contenu"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in cells for cell in row)
    with Session(engine) as session:
        assert sorted(flows(session, company)) == [("import", "chutes de carton", 2.0),
                                                   ("import", "papier broyé", pytest.approx(650))]  # fmt: skip
    # Importing the same file again replaces the imported flows instead of doubling them.
    again = import_flows(engine=engine, path=path, rejects_dir=tmp_path / "rapports",
                         actor="staff:test", now=NOW)  # fmt: skip
    assert again.imported == 2
    with Session(engine) as session:
        assert len(flows(session, company)) == 2


def test_a_dry_run_and_an_unreadable_file_write_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    with Session(engine, expire_on_commit=False) as session:
        company, _ = visited(session)
    path = write_csv(tmp_path / "flux.csv",
                     f"siret,sens,matiere,code_dechet,quantite,unite,frequence,exutoire\n"
                     f"{company.siret},sortant,chutes de carton,150101,2,t,mois,collecteur\n")  # fmt: skip
    report = import_flows(
        engine=engine, path=path, rejects_dir=tmp_path, actor="t", now=NOW, dry_run=True
    )
    assert report.imported == 1 and report.dry_run
    missing = write_csv(tmp_path / "sans-siret.csv", "sens;matiere;quantite\nsortant;carton;2\n")
    with pytest.raises(ListingFileError, match="colonne\\(s\\) siret manquante"):
        import_flows(engine=engine, path=missing, rejects_dir=tmp_path, actor="t", now=NOW)
    with pytest.raises(ListingFileError, match="introuvable"):
        import_flows(
            engine=engine, path=tmp_path / "absent.csv", rejects_dir=tmp_path, actor="t", now=NOW
        )
    with Session(engine) as session:
        assert session.exec(select(sa.func.count()).select_from(MaterialFlow)).one() == 0
