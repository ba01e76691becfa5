"""The ``surveys`` commands as staff run them: send (the flow on the test's Prefect harness), results, check."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models import Survey
from models.db import make_engine, write_transaction
from synergie.cli.app import main
from synergie.settings import Settings
from synergie.surveys.responses import save_response
from tests.synergie.surveys.conftest import build_held


def invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["synergie", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return int(ended.value.code or 0), out, err


def test_send_then_results_and_a_csv(
    prefect_harness: None,
    sqlite_settings: Settings,
    tmp_path: Path,
    capsys,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    held = build_held(make_engine(sqlite_settings.db_url), sqlite_settings)
    code, out, _ = invoke(capsys, monkeypatch, "surveys", "send", str(held.meeting_id))
    assert code == 0 and "1 questionnaire(s) ouvert(s), 4 invitation(s) et 0 rappel(s)" in out
    assert "4 e-mail(s) envoyé(s)" in out
    code, out, _ = invoke(capsys, monkeypatch, "surveys", "send", str(held.meeting_id))
    assert code == 0 and "0 invitation(s)" in out and "0 e-mail(s) envoyé(s)" in out
    with write_transaction(held.engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        survey = session.exec(select(Survey)).one()
        for contact, note, text in ((held.contacts(held.came[0])[0], 5, "Nos chutes de carton"),
                                    (held.contacts(held.came[1])[0], 3, None)):  # fmt: skip
            answers: dict[str, object] = {"satisfaction": note, "club": "Non"}
            if text:
                answers["synergies"] = text
            save_response(session=session, survey=survey, contact=contact, answers=answers,
                          expected_version=0, now=datetime.now(UTC))  # fmt: skip
        session.close()
    target = tmp_path / "reponses.csv"
    code, out, _ = invoke(
        capsys, monkeypatch, "surveys", "results", str(held.meeting_id), "--csv", str(target)
    )
    assert code == 0, out
    assert "2 entreprise(s) présente(s) sur 3 ont répondu (67 %)" in out
    assert "2 réponse(s) pour 4 contact(s) invité(s)" in out
    assert (
        "1. Dans l'ensemble, êtes-vous satisfait·e de cette rencontre ?" in out
        and "moyenne 4" in out
    )
    assert "« Nos chutes de carton » —" in out
    assert "5 réponse(s) exportée(s)" in out
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")


def test_results_and_send_refuse_in_one_french_line(
    sqlite_settings: Settings, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    held = build_held(make_engine(sqlite_settings.db_url), sqlite_settings)
    code, _, err = invoke(capsys, monkeypatch, "surveys", "results", str(held.meeting_id))
    assert code == 1 and "n'a pas encore de questionnaire" in err and "Traceback" not in err
    code, _, err = invoke(capsys, monkeypatch, "surveys", "results", "999")
    assert code == 1 and "Aucune rencontre n° 999" in err


def test_check_lists_a_valid_file_and_refuses_a_wrong_one_naming_the_line(
    sqlite_settings: Settings,
    tmp_path: Path,
    capsys,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    code, out, _ = invoke(capsys, monkeypatch, "surveys", "check", "suivi-rencontre")
    assert (
        code == 0 and "questionnaire valide, « Votre avis sur la rencontre », 6 question(s)" in out
    )
    assert "[club]" in out
    wrong = tmp_path / "atelier.yaml"
    wrong.write_text(
        "titre: Atelier\nquestions:\n  - id: Note\n    type: note\n    question: Q\n",
        encoding="utf-8",
    )
    code, _, err = invoke(capsys, monkeypatch, "surveys", "check", str(wrong))
    assert code == 1 and "ligne 3 : questions › n° 1 (Note) › id : lettres minuscules" in err
    assert "Traceback" not in err
