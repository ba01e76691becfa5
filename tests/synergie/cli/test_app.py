"""The synergie command line, run as staff run it: exit codes, French messages, no tracebacks."""

from __future__ import annotations

import email
import re
import sys
from pathlib import Path

import pytest

from synergie.cli.app import main
from tests.factories import luhn_siret, write_csv

SIRET = luhn_siret(7)


def invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["synergie", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return int(ended.value.code or 0), out, err


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "var"
    monkeypatch.setenv("SYNERGIE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("SYNERGIE_DATABASE_URL", raising=False)
    # The demo sets these two; monkeypatch puts them back after.
    monkeypatch.delenv("SYNERGIE_EMAIL_BACKEND", raising=False)
    monkeypatch.delenv("SYNERGIE_SMS_BACKEND", raising=False)
    return data_dir


def test_commands_explain_the_missing_database(cli_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = invoke(capsys, monkeypatch, "companies")
    assert code == 1 and "synergie init" in err and "Traceback" not in err


def test_init_then_list_and_move_by_hand(
    cli_env: Path, capsys, monkeypatch, prefect_harness
) -> None:  # type: ignore[no-untyped-def]
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    assert (cli_env / "synergie.db").exists()
    path = write_csv(
        cli_env.parent / "liste.csv",
        f"siret;raison_sociale;code_postal\n{SIRET};Scierie Fictive;21700\n",
    )
    code, out, _ = invoke(capsys, monkeypatch, "import", str(path))
    assert code == 0 and "Nouvelles entreprises" in out and "│      1 │" in out
    code, out, _ = invoke(capsys, monkeypatch, "companies", "--search", "scierie")
    assert code == 0 and SIRET in out and "listée" in out

    code, out, _ = invoke(
        capsys, monkeypatch, "stage", SIRET, "contacted", "--why", "courrier posté", "--by", "Anne"
    )
    assert code == 0 and "listée → contactée" in out
    code, _, err = invoke(capsys, monkeypatch, "stage", SIRET, "member", "--why", "trop vite")
    assert code == 1 and "refusé" in err and "une à une" in err and "Traceback" not in err
    code, _, err = invoke(capsys, monkeypatch, "stage", SIRET, "nowhere", "--why", "x")
    assert code == 1 and "étape inconnue" in err
    code, _, err = invoke(capsys, monkeypatch, "stage", "00000000000000", "contacted", "--why", "x")
    assert code == 1 and "aucune entreprise" in err
    code, out, _ = invoke(capsys, monkeypatch, "funnel")
    assert code == 0 and "contactée" in out


def test_import_of_an_unreadable_file_says_why_at_once(cli_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    code, _, err = invoke(capsys, monkeypatch, "import", str(cli_env / "absent.csv"))
    assert code == 1 and "fichier introuvable" in err
    path = write_csv(cli_env.parent / "ok.csv", f"siret;raison_sociale\n{SIRET};A\n")
    code, _, err = invoke(capsys, monkeypatch, "import", str(path), "--min-staff-band", "99")
    assert code == 1 and "tranche inconnue" in err


def test_demo_imports_the_sample_territory_and_prints_the_funnel(
    cli_env: Path, capsys, monkeypatch, prefect_harness
) -> None:  # type: ignore[no-untyped-def]
    # Twilio configured (issue 9): the demo must still text its fictional callers into files.
    for name, value in {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                        "TWILIO_AUTH_TOKEN": "jeton", "TWILIO_FROM": "+33700000000",
                        "TWILIO_API_URL": "http://127.0.0.1:9"}.items():  # fmt: skip
        monkeypatch.setenv(f"SYNERGIE_{name}", value)
    code, out, err = invoke(capsys, monkeypatch, "demo")
    assert code == 0, err
    assert (cli_env / "demo" / "synergie.db").exists()
    assert "Entonnoir" in out and "Référence" in out
    outbox = cli_env / "demo" / "outbox"
    assert len(list((outbox / "sms").glob("*.sms"))) == 3  # one daily list per volunteer
    methods = []
    for path in (outbox / "email").glob("*.eml"):
        for part in email.message_from_bytes(path.read_bytes()).walk():
            if part.get_content_type() == "text/calendar":
                methods.append(
                    part.get_payload(decode=True).decode().split("METHOD:")[1].split()[0]
                )
    # Invitations, one moved (a second REQUEST for the same visit) and one cancelled.
    assert methods.count("CANCEL") == 1 and methods.count("REQUEST") >= 3
    # Visits booked, then done (the demo closes them before the meetings): reached, not stuck.
    scheduled = [line for line in out.splitlines() if "visite planifiée" in line]
    assert scheduled and int(scheduled[0].split("│")[3]) > 0
    participants = [line for line in out.splitlines() if "│ participante" in line]
    assert participants and int(participants[0].split("│")[2]) >= 15
    flat = " ".join(out.split())
    assert "15 inscrites (complet), 1 en liste d'attente" in flat and "première de la liste" in flat
    assert flat.count(" invite ") >= 3 and "Entreprises invitées par les participants" in flat
    rows = [line for line in out.splitlines() if "Nouvelles entreprises" in line]
    assert rows and int(rows[0].split("│")[2]) >= 50
    # The held meetings' surveys: invitations through the flow, three answers, reminders to the others only.
    assert "13. Questionnaires de suivi (flow surveys) : 2 ouvert(s)" in flat
    assert "3 réponses sur le portail" in flat and "aucun à qui a répondu" in flat
    assert (
        "Résultats de la rencontre d'avril : 3 entreprise(s) présente(s) sur 15 ont répondu (20 %)"
        in flat
    )
    # It ends with matching on the flows its inventory step stored, two synergies moved
    # along (the cardboard one's trips taken from its flow), and the report; steps in order.
    steps = [int(m) for m in re.findall(r"^\s*(\d+)\. ", out, flags=re.MULTILINE)]
    assert steps == sorted(steps) and steps[-4:] == [13, 14, 15, 16], steps
    assert re.search(
        r"15\. Mise en relation sur les 7 flux de l'inventaire \(3 entreprises\)", flat
    )
    assert "même catégorie de matière « papier-carton »" in flat
    assert "3 trajets/mois de 360 km évités, repris de l'exutoire actuel du flux" in flat
    report = out.split("16. Bilan de la démarche : ")[1].split()[0]
    assert Path(report).exists() and "12\u00a0960" in Path(report).read_text(encoding="utf-8")
    # Run again: a fresh database each time, the same result.
    code, again, _ = invoke(capsys, monkeypatch, "demo")
    assert (
        code == 0
        and [line for line in again.splitlines() if "Nouvelles entreprises" in line] == rows
    )


def test_mail_send_checks_before_starting_prefect(cli_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # No Prefect fixture here: were a flow started, Prefect's temporary API would be announced.
    assert invoke(capsys, monkeypatch, "init")[0] == 0
    code, out, err = invoke(capsys, monkeypatch, "mail", "send")
    assert code == 1 and "campagne inconnue" in err and "Traceback" not in out + err
    assert "API locale" not in out
    assert invoke(capsys, monkeypatch, "campaign", "add", "Test", "--commune", "21464")[0] == 0
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "smtp")
    code, out, err = invoke(capsys, monkeypatch, "mail", "send")
    assert code == 1 and "SYNERGIE_SMTP_HOST" in err and "API locale" not in out
    assert len(err.strip().splitlines()) <= 2  # one message, perhaps wrapped
