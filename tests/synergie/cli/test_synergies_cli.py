"""The synergies and report commands, as staff type them: French messages, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from models import Company, Stage
from models.db import make_engine
from tests.factories import luhn_siret, write_csv
from tests.synergie.cli.test_app import cli_env, invoke  # noqa: F401

A, B, FAR = luhn_siret(101), luhn_siret(102), luhn_siret(103)


@pytest.fixture
def territory(cli_env: Path, capsys, monkeypatch) -> Path:  # type: ignore[no-untyped-def]  # noqa: F811
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    engine = make_engine(f"sqlite:///{cli_env / 'synergie.db'}")
    with Session(engine) as session:
        for siret, name, lat, lon in ((A, "Cartonnerie", 47.137, 4.949),
                                      (B, "Emballeur", 47.025, 4.838),
                                      (FAR, "Lyonnais", 45.76, 4.84)):  # fmt: skip
            session.add(Company(siret=siret, name=name, name_key=name.lower(), stage=Stage.VISITED,
                                latitude=lat, longitude=lon))  # fmt: skip
        session.commit()
    engine.dispose()
    return write_csv(
        cli_env.parent / "flux.csv",
        "siret;direction;code;category;words;tonnes_per_month;outlet;accepts_hazardous\n"
        f"{A};sortant;15 01 01;papier-carton;chutes de carton;2;Recyclage;\n"
        f"{B};entrant;15 01 01;papier-carton;carton de calage;1,5;;\n"
        f"{FAR};entrant;15 01 01;papier-carton;carton;2;;\n"
        f"{A};sortant;16 06 01*;batteries;batteries plomb;0,1;Collecteur;\n"
        f"{B};entrant;16 06 01*;batteries;batteries;1;;non\n"
        f"{A};sortant;99 99;x;x;1;;\n",
    )


def test_match_add_move_list_and_report(territory: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    code, out, err = invoke(capsys, monkeypatch, "synergies", "match", "--flows", str(territory))
    assert code == 0, err
    assert "1 candidate(s)" in out and "même code déchet 15 01 01" in out
    assert (
        "Lyonnais" not in out and "16 06 01" not in out
    )  # too far; hazardous to a site that can't
    assert "ligne 7" in out and "n'est pas un code" in out
    code, out, err = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", B,
                            "--title", "Carton", "--trips", "3", "--km", "360", "--flow", "2")  # fmt: skip
    assert code == 0 and "Synergie n° 1 enregistrée" in out, err
    code, out, _ = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", "collectivite",
                          "--title", "Papier broyé")  # fmt: skip
    assert code == 0 and "n° 2" in out
    for status in ("study", "agreed"):
        code, out, err = invoke(
            capsys, monkeypatch, "synergies", "move", "1", status, "--why", "réunion"
        )
        assert code == 0, err
    code, _, err = invoke(capsys, monkeypatch, "synergies", "move", "2", "running", "--why", "vite")
    assert code == 1 and "un à un" in err and "Traceback" not in err
    code, _, err = invoke(capsys, monkeypatch, "synergies", "move", "2", "fini", "--why", "x")
    assert code == 1 and "statut « fini » inconnu" in err
    code, _, err = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", "123")
    assert code == 1 and "aucune entreprise" in err and "collectivite" in err
    code, out, _ = invoke(capsys, monkeypatch, "synergies", "list")
    assert code == 0 and "la collectivité" in out and "12 960" in out.replace("\u00a0", " ")
    html = territory.parent / "bilan.html"
    code, out, err = invoke(capsys, monkeypatch, "report", "--html", str(html))
    assert code == 0, err
    assert html.exists() and "12 960 km de poids lourds" in out.replace("\u00a0", " ")
    assert "pas encore de données" in out
