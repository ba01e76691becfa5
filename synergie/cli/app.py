"""The ``synergie`` command: the root application, its command groups, and the entry point."""

from __future__ import annotations

import sys

import typer

from synergie.cli import (
    calls,
    demo,
    inventory,
    listing,
    mailbox,
    mailing,
    meetings,
    optout,
    portal,
    reporting,
    surveys,
    synergies,
    visits,
)
from synergie.cli.common import CliError, err

app = typer.Typer(
    help="Synergie : le parcours des entreprises d'une démarche d'écologie industrielle et territoriale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for commands in (listing.app, reporting.app, portal.app, demo.app):
    app.add_typer(commands)  # top-level commands: init, import, companies, stage, funnel…
app.add_typer(mailing.campaign_app, name="campaign")
app.add_typer(mailing.mail_app, name="mail")
app.add_typer(calls.callers_app, name="callers")
app.add_typer(calls.calls_app, name="calls")
app.add_typer(visits.staff_app, name="staff")
app.add_typer(visits.visits_app, name="visits")
app.add_typer(optout.app, name="optout")
app.add_typer(mailbox.mailbox_app, name="mailbox")
app.add_typer(meetings.meetings_app, name="meetings")
app.add_typer(inventory.inventory_app, name="inventory")
app.add_typer(synergies.synergies_app, name="synergies")
app.add_typer(surveys.surveys_app, name="surveys")


def main() -> None:
    """Entry point of the console script: known errors become one clear line and exit code 1."""
    from synergie.errors import person_errors

    known: tuple[type[Exception], ...] = (CliError, *person_errors())
    try:
        app()
    except known as exc:
        err.print(f"[bold red]Erreur :[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
