"""The synergies and report commands, as staff type them: French messages, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from models import Company, FlowOrigin, Stage
from models.db import make_engine
from synergie.inventory.rows import validate_flow
from synergie.inventory.store import add_flows
from tests.factories import NOW, luhn_siret, write_csv
from tests.synergie.cli.test_app import cli_env, invoke  # noqa: F401

A, B, FAR, NOWHERE = luhn_siret(101), luhn_siret(102), luhn_siret(103), luhn_siret(104)


def _flows(session: Session, company: Company, *answers: dict[str, str]) -> list[int]:
    rows = [validate_flow(values) for values in answers]
    stored = add_flows(session=session, company=company, rows=rows, origin=FlowOrigin.STAFF,
                       actor="staff", now=NOW)  # fmt: skip
    return [int(f.id or 0) for f in stored]


@pytest.fixture
def territory(cli_env: Path, capsys, monkeypatch) -> dict[str, int]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Three companies and their inventory: cardboard out at A, in at B and at FAR (too far);
    lead batteries out at A that B takes only as « deee » without saying it takes hazardous ones."""
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    engine = make_engine(f"sqlite:///{cli_env / 'synergie.db'}")
    ids: dict[str, int] = {}
    with Session(engine) as session:
        companies = {}
        for siret, name, lat, lon in ((A, "Cartonnerie", 47.137, 4.949),
                                      (B, "Emballeur", 47.025, 4.838),
                                      (FAR, "Lyonnais", 45.76, 4.84),
                                      (NOWHERE, "Sans adresse", None, None)):  # fmt: skip
            company = Company(siret=siret, name=name, name_key=name.lower(), stage=Stage.VISITED,
                              latitude=lat, longitude=lon)  # fmt: skip
            session.add(company)
            session.flush()
            companies[siret] = company
        ids["carton"], ids["batteries"] = _flows(
            session, companies[A],
            {"direction": "sortant", "description": "chutes de carton", "waste_code": "15 01 01",
             "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "collecteur",
             "trips_per_month": "3", "km_per_trip": "360"},
            {"direction": "sortant", "description": "batteries au plomb", "waste_code": "16 06 01",
             "quantity": "100", "unit": "kg", "frequency": "mois", "outlet": "collecteur"},
        )  # fmt: skip
        ids["calage"], _ = _flows(
            session, companies[B],
            {"direction": "entrant", "description": "carton de calage", "category": "papier-carton",
             "quantity": "1,5", "unit": "t", "frequency": "mois", "outlet": "fournisseur"},
            {"direction": "entrant", "description": "batteries", "category": "deee",
             "quantity": "1", "unit": "t", "frequency": "mois", "outlet": "fournisseur"},
        )  # fmt: skip
        ids["lyon"], *_ = _flows(
            session, companies[FAR],
            {"direction": "entrant", "description": "carton", "waste_code": "15 01 01",
             "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "fournisseur"},
        )  # fmt: skip
        _flows(
            session, companies[NOWHERE],
            {"direction": "entrant", "description": "carton", "waste_code": "15 01 01",
             "quantity": "2", "unit": "t", "frequency": "mois", "outlet": "fournisseur"},
        )  # fmt: skip
        session.commit()
    engine.dispose()
    return ids


def test_match_reads_the_inventory_then_add_move_list_and_report(  # type: ignore[no-untyped-def]
    territory: dict[str, int],
    cli_env: Path,  # noqa: F811
    capsys,
    monkeypatch,
) -> None:
    code, out, err = invoke(capsys, monkeypatch, "synergies", "match")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "1 candidate(s) sur 5 flux de 3 sites" in flat
    assert "même catégorie de matière « papier-carton »" in flat
    assert "Cartonnerie produit 2 t/mois, Emballeur en consomme 1,5 t/mois" in flat
    # too far; hazardous to a site that did not say it takes it; no coordinates, said so
    assert "Lyonnais" not in out and "16 06 01" not in out
    assert "Sans adresse" in out and "pas de coordonnées" in out
    assert f"{territory['carton']}, {territory['calage']}" in out
    code, out, err = invoke(capsys, monkeypatch, "synergies", "match", "--max-km", "500")
    assert code == 0 and "Lyonnais" in out, err
    csv = write_csv(
        cli_env.parent / "flux.csv",
        "siret;direction;code;category;words;tonnes_per_month;outlet;accepts_hazardous\n"
        f"{B};entrant;16 06 01*;deee;batteries;1;;oui\n"
        f"{A};sortant;99 99;x;x;1;;\n",
    )
    code, out, err = invoke(capsys, monkeypatch, "synergies", "match", "--flows", str(csv))
    assert code == 0, err
    assert "2 candidate(s) sur 6 flux" in " ".join(out.split()) and "csv:2" in out
    assert "déchet dangereux : Emballeur a déclaré pouvoir le recevoir" in " ".join(out.split())
    assert "ligne 3" in out and "n'est pas un code" in out
    code, out, err = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", B,
                            "--title", "Carton", "--flow", str(territory["carton"]),
                            "--flow", str(territory["calage"]))  # fmt: skip
    assert code == 0 and "Synergie n° 1 enregistrée" in out, err
    # Prefilled from the cardboard's trips to its collector; 1.5 t of the 2 t a month, × 12.
    assert "3 trajet(s)/mois de 360 km, 18 t/an (repris des flux liés" in " ".join(out.split())
    code, _, err = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", B,
                          "--flow", str(territory["lyon"]))  # fmt: skip
    assert code == 1 and "n'appartient à aucune des entreprises" in err
    code, _, err = invoke(capsys, monkeypatch, "synergies", "add", "--from", A, "--to", B,
                          "--flow", "9999")  # fmt: skip
    assert code == 1 and "aucun flux n° 9999" in err and "Traceback" not in err
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
    html = cli_env.parent / "bilan.html"
    code, out, err = invoke(capsys, monkeypatch, "report", "--html", str(html))
    assert code == 0, err
    assert html.exists() and "12 960 km de poids lourds" in out.replace("\u00a0", " ")
    assert "pas encore de données" in out
