"""Communes on the command line: campaign communes checked and resolved, the dry run's reasons, --legal-units."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models import Campaign
from models.db import make_engine
from tests.synergie.cli.test_app import invoke
from tests.synergie.listing.test_places import LISTING, sirene_case


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "var"
    monkeypatch.setenv("SYNERGIE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SYNERGIE_DATABASE_URL", raising=False)
    monkeypatch.delenv("SYNERGIE_EMAIL_BACKEND", raising=False)
    return data_dir


def campaigns(data_dir: Path) -> dict[str, list[str]]:
    engine = make_engine(f"sqlite:///{data_dir / 'synergie.db'}")
    with Session(engine) as session:
        found = {c.name: c.communes for c in session.exec(select(Campaign))}
    engine.dispose()
    return found


def test_campaign_communes_are_checked_and_resolved(cli_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    code, out, err = invoke(capsys, monkeypatch, "campaign", "add", "Faux", "--commune", "999999")
    assert code == 1 and "commune inconnue « 999999 »" in err and "Traceback" not in out + err
    code, _, err = invoke(capsys, monkeypatch, "campaign", "add", "Ambigu", "--commune", "21220")
    assert code == 1 and "désigne plusieurs communes" in err and "Brochon (21110, 21220)" in err
    code, _, err = invoke(
        capsys, monkeypatch, "campaign", "add", "Saint", "--commune", "Saint-Denis"
    )
    assert code == 1 and "Saint-Denis (93066" in err
    code, out, _ = invoke(
        capsys, monkeypatch, "campaign", "add", "Pays de Nuits",
        "--commune", "Nuits St Georges", "--commune", "21220 Gevrey-Chambertin",
        "--commune", "21186", "--commune", "21640",
    )  # fmt: skip
    assert code == 1  # 21640 is a commune's INSEE code and Vougeot's postcode: which one?
    assert campaigns(cli_env) == {}
    code, out, _ = invoke(
        capsys, monkeypatch, "campaign", "add", "Pays de Nuits",
        "--commune", "Nuits St Georges", "--commune", "21220 Gevrey-Chambertin", "--commune", "21186",
    )  # fmt: skip
    assert code == 0 and "3 commune(s)" in out
    assert campaigns(cli_env) == {"Pays de Nuits": ["21186", "21295", "21464"]}


def test_the_dry_run_says_who_falls_outside_the_campaign_and_why(
    cli_env: Path, capsys, monkeypatch, prefect_harness, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    listing = tmp_path / "liste.csv"
    listing.write_text(LISTING, encoding="utf-8")
    code, out, _ = invoke(capsys, monkeypatch, "import", str(listing))
    assert code == 0 and re.search(r"Importées sans code commune \(à compléter\)\s+│\s+2 ", out)
    assert (
        invoke(capsys, monkeypatch, "campaign", "add", "Nuits", "--commune", "Nuits-Saint-Georges")[
            0
        ]
        == 0
    )
    code, out, _ = invoke(capsys, monkeypatch, "mail", "send", "--dry-run")
    assert code == 0 and "0 message(s) partiraient" in out
    assert (
        "4 entreprise(s) du listing hors des communes de la campagne : 2 sans code commune" in out
    )
    assert "2 dans une autre commune" in out

    sites, units, _ = sirene_case(tmp_path)
    code, out, _ = invoke(
        capsys,
        monkeypatch,
        "import",
        str(sites),
        "--legal-units",
        str(units),
        "--commune",
        "Nuits-Saint-Georges",
    )
    assert code == 0 and "Nommées d'après leur unité légale" in out
    assert re.search(r"Non diffusibles \(SIRENE, jamais démarchées\)\s+│\s+2 ", out)


@pytest.mark.parametrize("bad", ["absent.csv"])
def test_an_unreadable_legal_units_file_is_said_before_prefect(
    cli_env: Path, capsys, monkeypatch, tmp_path: Path, bad: str
) -> None:  # type: ignore[no-untyped-def]
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    sites, _, _ = sirene_case(tmp_path)
    code, out, err = invoke(
        capsys, monkeypatch, "import", str(sites), "--legal-units", str(tmp_path / bad)
    )
    assert code == 1 and "fichier introuvable" in err and "API locale" not in out
    code, out, err = invoke(capsys, monkeypatch, "import", str(sites), "--commune", "999999")
    assert code == 1 and "commune inconnue « 999999 »" in err and "API locale" not in out
