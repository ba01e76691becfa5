"""The ``synergie mailbox`` commands: read the mailbox that receives bounces, unsubscribe mails and answers."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from synergie.cli.common import CliError, actor, cli_settings, console

mailbox_app = typer.Typer(
    help="Boîte aux lettres : avis de non-remise, désinscriptions par courriel, réponses d'agenda.",
    no_args_is_help=True,
)


def _password(settings: object) -> str | None:
    """SYNERGIE_IMAP_PASSWORD, else (with a Prefect server configured) the Secret block."""
    secret = getattr(settings, "imap_password", None)
    if secret is not None:
        return str(secret.get_secret_value())
    if os.environ.get("PREFECT_API_URL") and getattr(settings, "imap_host", ""):
        from tasks.runtime import imap_password

        return imap_password(settings)  # type: ignore[arg-type]
    return None


@mailbox_app.command("check")
def mailbox_check(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Dire ce qui serait fait, sans rien enregistrer ni ranger"),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Courriels lus au plus")] = 500,
) -> None:
    """Lit la boîte une fois : chaque courriel est traité une seule fois et rangé dans un dossier qui dit ce qu'il est devenu."""
    from models.db import make_engine, require_schema
    from synergie.mailbox.checking import OUTCOME_LABELS, check_mailbox
    from synergie.mailbox.imap import FOLDERS, ImapMailbox, MailboxSettingsError
    from synergie.messaging.rendering import MailTemplates

    settings = cli_settings()
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
        with ImapMailbox(settings, password=_password(settings) or "") as mailbox:
            report = check_mailbox(
                engine=engine, settings=settings, templates=MailTemplates(settings.templates_dir),
                mailbox=mailbox, now=lambda: datetime.now(UTC), actor=actor(), limit=limit,
                dry_run=dry_run,
            )  # fmt: skip
    except MailboxSettingsError as exc:
        raise CliError(str(exc)) from exc
    finally:
        engine.dispose()
    table = Table(title="Essai à blanc : rien n'est enregistré ni rangé" if dry_run else None)
    for column in ("Courriels", "Nombre", "Dossier"):
        table.add_column(column)
    for outcome, count in report.counts.items():
        folder = f"{settings.imap_archive}/{FOLDERS[outcome]}"
        table.add_row(OUTCOME_LABELS[outcome], str(count), folder)
    console.print(table)
    if report.already_handled:
        console.print(f"{report.already_handled} courriel(s) déjà traité(s) : seulement rangé(s).")
    if report.left:
        console.print(f"{report.left} courriel(s) restent pour le passage suivant (--limit).")
    if not report.handled and not report.already_handled:
        console.print(f"Aucun courriel dans « {settings.imap_folder} ».")
