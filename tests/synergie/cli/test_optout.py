"""The ``optout`` commands through Typer's runner: staff record, list and (explicitly) lift opt-outs."""

from __future__ import annotations

import typer
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models import Suppression
from models.db import make_engine
from synergie.cli.common import CliError
from synergie.cli.optout import app as optout_app
from synergie.settings import Settings

app = typer.Typer()
app.add_typer(optout_app, name="optout")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output, result.exception


def suppressions(settings: Settings) -> list[tuple[str, str, str, str | None]]:
    engine = make_engine(settings.db_url)
    with Session(engine) as session:
        rows = session.exec(select(Suppression).order_by(col(Suppression.id))).all()
        found = [(r.address, r.channel.value, r.source.value, r.lifted_why) for r in rows]
    engine.dispose()
    return found


def test_staff_add_list_and_lift_opt_outs(sqlite_settings: Settings) -> None:
    code, out, _ = run("optout", "add", "06 39 98 10 01", "--channel", "sms",
                       "--why", "courrier du 3 mars")  # fmt: skip
    assert code == 0 and "+33639981001" in out and "SMS" in out
    code, out, _ = run("optout", "add", "C.Martin@Example.org")
    assert code == 0 and "c.martin@example.org" in out and "tout" in out
    code, out, _ = run("optout", "add", "c.martin@example.org", "--channel", "email")
    assert code == 0 and "Déjà désinscrit" in out  # "all" covers e-mail already
    code, _, exc = run("optout", "add", "c.martin@example.org", "--channel", "sms")
    assert code == 1 and isinstance(exc, CliError) and "ne s'applique pas" in str(exc)
    code, _, exc = run("optout", "add", "n'importe quoi")
    assert code == 1 and isinstance(exc, CliError) and "numéro de téléphone" in str(exc)
    code, _, exc = run("optout", "add", "+33639981001", "--channel", "fax")
    assert code == 1 and isinstance(exc, CliError) and "canal inconnu" in str(exc)

    code, out, _ = run("optout", "list")
    assert code == 0 and "Désinscriptions (2)" in out
    assert "+33639981001" in out and "courrier du 3 mars" in out and "staff" in out

    # Lifting needs a reason and an explicit --confirm; without them nothing changes.
    code, _, exc = run("optout", "remove", "+33639981001", "--confirm")
    assert code == 1 and isinstance(exc, CliError) and "--why" in str(exc)
    code, _, exc = run("optout", "remove", "+33639981001", "--why", "demande écrite")
    assert code == 1 and isinstance(exc, CliError) and "--confirm" in str(exc)
    assert [row[3] for row in suppressions(sqlite_settings)] == [None, None]
    code, out, _ = run("optout", "remove", "06 39 98 10 01", "--why", "demande écrite",
                       "--confirm")  # fmt: skip
    assert code == 0 and "LEVÉE" in out and "+33639981001" in out
    code, _, exc = run("optout", "remove", "06 39 98 10 01", "--why", "encore", "--confirm")
    assert code == 1 and isinstance(exc, CliError) and "aucune désinscription" in str(exc)

    assert suppressions(sqlite_settings) == [
        ("+33639981001", "sms", "staff", "demande écrite"),
        ("c.martin@example.org", "all", "staff", None),
    ]
    code, out, _ = run("optout", "list")
    assert "Désinscriptions (1)" in out and "+33639981001" not in out
    code, out, _ = run("optout", "list", "--lifted")
    assert "Désinscriptions (2)" in out and "demande écrite" in out
