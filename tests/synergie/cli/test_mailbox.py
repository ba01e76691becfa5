"""``synergie mailbox check`` through Typer's test runner, against a real Dovecot, on SQLite."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from synergie.cli.common import CliError
from synergie.cli.mailbox import mailbox_app
from synergie.settings import Settings
from tests.servers.imap_server import ImapAccount
from tests.synergie.mailbox.mails import GARBAGE

app = typer.Typer()
app.add_typer(mailbox_app, name="mailbox")
runner = CliRunner()


def point_at(account: ImapAccount, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    for name, value in {
        "HOST": account.host, "PORT": str(account.port), "SECURITY": "none",
        "USER": account.user, "PASSWORD": password,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"SYNERGIE_IMAP_{name}", value)


def test_check_files_the_mail_and_says_so_in_french(
    sqlite_settings: Settings, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(imap_account, monkeypatch, imap_account.password)
    imap_account.append(GARBAGE)
    preview = runner.invoke(app, ["mailbox", "check", "--dry-run"], terminal_width=200)
    assert preview.exit_code == 0, preview.output
    assert "Essai à blanc" in preview.output and imap_account.folders() == {"INBOX": 1}
    result = runner.invoke(app, ["mailbox", "check"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "à traiter par l'équipe" in result.output and "Synergie/À traiter" in result.output
    assert imap_account.folders()["Synergie/À traiter"] == 1
    empty = runner.invoke(app, ["mailbox", "check"], terminal_width=200)
    assert "Aucun courriel dans « INBOX »" in empty.output


def test_a_wrong_password_is_one_french_line(
    sqlite_settings: Settings, imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(imap_account, monkeypatch, "not-the-password")
    result = runner.invoke(app, ["mailbox", "check"])
    assert isinstance(result.exception, CliError)
    assert "refuse l'identifiant ou le mot de passe" in str(result.exception)
