"""The ``synergie inventory`` commands and ``visits done``'s questionnaire, through Typer's runner, on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlmodel import Session, select
from typer.testing import CliRunner

from models import Company, MaterialFlow, Message, Stage
from models.db import make_engine, session_scope
from synergie.cli.inventory import inventory_app
from synergie.settings import Settings
from tests.factories import make_company, make_contact, write_csv

app = typer.Typer()
app.add_typer(inventory_app, name="inventory")
runner = CliRunner()


@pytest.fixture
def company(sqlite_settings: Settings) -> Company:
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        found = make_company(session, stage=Stage.VISITED, name="Cartonnerie Test")
        make_contact(session, found)
    engine.dispose()
    return found


def flows(settings: Settings) -> list[MaterialFlow]:
    engine = make_engine(settings.db_url)
    with Session(engine) as session:
        rows = list(session.exec(select(MaterialFlow)))
    engine.dispose()
    return rows


def stage(settings: Settings, company: Company) -> Stage:
    engine = make_engine(settings.db_url)
    with Session(engine) as session:
        found = session.get(Company, company.id)
        assert found is not None
        value = found.stage
    engine.dispose()
    return value


def test_add_the_issue_example_then_list_and_accept(
    sqlite_settings: Settings, company: Company
) -> None:
    siret = company.siret or ""
    result = runner.invoke(app, ["inventory", "add", siret, "--direction", "sortant", "--material",
                                 "chutes de carton", "--code", "150101", "--quantity", "2",
                                 "--unit", "t", "--per", "month", "--trips", "3", "--km", "360"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Flux noté : chutes de carton, 2 t par mois" in result.output
    [flow] = flows(sqlite_settings)
    assert (flow.waste_code, flow.category, flow.trips_per_month, flow.km_per_trip) == (
        "150101",
        "papier-carton",
        3,
        360,
    )
    assert flow.origin.value == "staff" and flow.created_by.startswith("staff:")
    listed = runner.invoke(app, ["inventory", "list", siret], env={"COLUMNS": "250"})
    assert (
        listed.exit_code == 0
        and "chutes de carton" in listed.output
        and "15 01 01" in listed.output
    )
    assert "1 flux." in listed.output
    accepted = runner.invoke(app, ["inventory", "accept", siret])
    assert accepted.exit_code == 0 and "flux collectés" in accepted.output
    assert stage(sqlite_settings, company) == Stage.FLOWS_COLLECTED


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--code", "999999"],
            "Code déchet : « 999999 » n'est pas un code de la liste européenne des déchets",
        ),
        (["--code", "150101", "--quantity", "-2"], "Quantité : -2 est négatif"),
        (
            ["--code", "150101", "--unit", "brouettes"],
            "Unité : « brouettes » n'est pas une valeur possible",
        ),
    ],
)
def test_a_bad_flow_is_one_french_line_and_nothing_is_written(
    sqlite_settings: Settings, company: Company, options: list[str], message: str
) -> None:
    args = {
        "--direction": "sortant",
        "--material": "carton",
        "--quantity": "2",
        "--unit": "t",
        "--per": "mois",
    }
    for name, value in zip(options[::2], options[1::2], strict=True):
        args[name] = value
    result = runner.invoke(app, ["inventory", "add", company.siret or "",
                                 *[part for pair in args.items() for part in pair]])  # fmt: skip
    assert isinstance(result.exception, Exception) and message in str(result.exception)
    assert flows(sqlite_settings) == []


def test_accepting_an_empty_inventory_or_an_unknown_siret_is_refused(
    sqlite_settings: Settings, company: Company
) -> None:
    result = runner.invoke(app, ["inventory", "accept", company.siret or ""])
    assert "aucun flux" in str(result.exception)
    unknown = runner.invoke(app, ["inventory", "accept", "73282932100018"])
    assert "aucune entreprise avec le SIRET" in str(unknown.exception)
    assert stage(sqlite_settings, company) == Stage.VISITED


def test_import_reports_bad_rows_and_keeps_the_good(
    sqlite_settings: Settings, company: Company, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "flux.csv",
                     "siret;sens;matiere;code_dechet;quantite;unite;frequence;exutoire\n"
                     f"{company.siret};sortant;chutes de carton;150101;2;t;mois;collecteur\n"
                     f"{company.siret};sortant;bidons;15 01 10;-1;t;mois;collecteur\n")  # fmt: skip
    result = runner.invoke(app, ["inventory", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "ligne 3 : Quantité : -1 est négatif" in result.output
    assert "rejets-flux-" in result.output.replace("\n", "")
    assert [f.description for f in flows(sqlite_settings)] == ["chutes de carton"]
    unreadable = runner.invoke(app, ["inventory", "import", str(tmp_path / "absent.csv")])
    assert "introuvable" in str(unreadable.exception)


def test_closing_a_visit_sends_the_questionnaire_unless_suppressed(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from synergie.cli.visits import visits_app
    from synergie.messaging.optouts import suppress
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import add_staff, book_visit
    from tests.factories import make_interested_company

    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    visits = typer.Typer()
    visits.add_typer(visits_app, name="visits")
    engine = make_engine(sqlite_settings.db_url)
    with session_scope(engine) as session:
        add_staff(session=session, name="Claire Martin", email="claire@example.org")
        companies = [make_interested_company(session) for _ in range(2)]
        for found in companies:
            book_visit(session=session, settings=sqlite_settings, templates=MailTemplates(),
                       company=found, now=datetime.now(UTC), actor="test")  # fmt: skip
        # The second company's contact asked by letter never to receive e-mail again.
        from models import Contact

        contact = session.exec(select(Contact).where(Contact.company_id == companies[1].id)).one()
        suppress(session.connection(), address=contact.email or "", channel="email", source="staff",
                 now=datetime.now(UTC), actor="staff:test", reason="courrier")  # fmt: skip
    for found in companies:
        result = runner.invoke(
            visits, ["visits", "done", found.siret or "", "--notes", "Chutes de carton"]
        )
        assert result.exit_code == 0, result.output
    with Session(engine) as session:
        steps = [
            m.step
            for m in session.exec(select(Message).where(Message.step.startswith("inventaire")))
        ]  # type: ignore[attr-defined]
    engine.dispose()
    assert steps == [f"inventaire-{companies[0].id}"]
    mails = [p.read_text() for p in (sqlite_settings.outbox_dir / "email").glob("*.eml")]
    assert sum("/inventaire/" in m for m in mails) == 1
