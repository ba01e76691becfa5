"""The ``synergie optout`` commands: the suppression list, as staff see and keep it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from models.enums import Suppressed
from synergie.cli.common import CliError, actor, cli_settings, console, db_session

app = typer.Typer(
    help=(
        "Désinscriptions : la liste d'opposition (adresses e-mail et numéros qui ne reçoivent "
        "plus rien), quelle que soit la fiche d'où elles viennent."
    ),
    no_args_is_help=True,
)

_CHANNELS_FR = {
    Suppressed.EMAIL: "e-mails",
    Suppressed.SMS: "SMS",
    Suppressed.PHONE: "appels",
    Suppressed.ALL: "tout",
}
_CHANNEL_HELP = "Canal : email, sms, phone (appels) ou all (tout)"


def _channel(value: str | None) -> Suppressed | None:
    if value is None:
        return None
    try:
        return Suppressed(value.strip().lower())
    except ValueError:
        raise CliError(f"canal inconnu « {value} » : choisissez email, sms, phone ou all") from None


@app.command("add")
def optout_add(
    address: Annotated[str, typer.Argument(help="Adresse e-mail ou numéro de téléphone")],
    channel: Annotated[str, typer.Option("--channel", help=_CHANNEL_HELP)] = "all",
    why: Annotated[
        str | None, typer.Option("--why", help="Pourquoi (ex. « courrier du 3 mars »)")
    ] = None,
) -> None:
    """Enregistre une désinscription reçue par courrier, par téléphone ou de vive voix."""
    from synergie.messaging.optouts import NotAnAddress, normalise_address, suppress

    wanted = _channel(channel) or Suppressed.ALL
    try:
        normalised, _ = normalise_address(address)
        with db_session() as session:
            added = suppress(
                session.connection(), address=normalised, channel=wanted, source="staff",
                now=datetime.now(UTC), actor=actor(), reason=(why or "").strip() or None,
            )  # fmt: skip
    except NotAnAddress as exc:
        raise CliError(str(exc)) from exc
    what = _CHANNELS_FR[wanted]
    if added:
        console.print(f"Désinscription enregistrée : {normalised} ne recevra plus rien ({what}).")
    else:
        console.print(f"Déjà désinscrit : {normalised} ({what}). Rien de changé.")


@app.command("list")
def optout_list(
    search: Annotated[
        str | None, typer.Option("--search", help="Ne montrer que les adresses contenant ce texte")
    ] = None,
    lifted: Annotated[
        bool, typer.Option("--lifted", help="Montrer aussi les désinscriptions levées")
    ] = False,
) -> None:
    """Liste les adresses et numéros désinscrits, les plus récents d'abord."""
    from synergie.messaging.optouts import list_suppressions

    tz = cli_settings().tz
    with db_session() as session:
        rows = list_suppressions(session.connection(), include_lifted=lifted, search=search)
    table = Table(title=f"Désinscriptions ({len(rows)})")
    for column in ("Adresse ou numéro", "Canal", "Depuis", "Origine", "Par", "Motif"):
        table.add_column(column)
    if lifted:
        table.add_column("Levée")
    for row in rows:
        cells = [
            row.address, _CHANNELS_FR[Suppressed(row.channel)],
            row.at.astimezone(tz).strftime("%d/%m/%Y %H:%M"), str(row.source), row.actor,
            row.reason,
        ]  # fmt: skip
        if lifted:
            cells.append(
                f"le {row.lifted_at.astimezone(tz):%d/%m/%Y} par {row.lifted_by} : {row.lifted_why}"
                if row.lifted_at
                else "—"
            )
        table.add_row(*cells)
    console.print(table)


@app.command("remove")
def optout_remove(
    address: Annotated[str, typer.Argument(help="Adresse e-mail ou numéro de téléphone")],
    why: Annotated[str, typer.Option("--why", help="Pourquoi la désinscription est levée")] = "",
    channel: Annotated[
        str | None, typer.Option("--channel", help=f"{_CHANNEL_HELP} (défaut : tous)")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Confirme la levée (sans lui, rien n'est changé)")
    ] = False,
) -> None:
    """Lève une désinscription : la personne pourra de nouveau être contactée (tracé)."""
    from synergie.messaging.optouts import NotAnAddress, SuppressionNotFound, lift_suppression

    wanted = _channel(channel)
    if not why.strip():
        raise CliError(
            "indiquez pourquoi la désinscription est levée avec --why (ex. « nouvelle demande "
            "écrite de la personne du 3 mars ») : la levée est tracée"
        )
    if not confirm:
        raise CliError(
            "lever une désinscription permet de recontacter une personne qui l'avait refusé : "
            "relancez avec --confirm si elle l'a demandé elle-même. Rien n'a été changé."
        )
    try:
        with db_session() as session:
            lifted = lift_suppression(
                session.connection(), address=address, channel=wanted, why=why, actor=actor(),
                now=datetime.now(UTC),
            )  # fmt: skip
    except (NotAnAddress, SuppressionNotFound) as exc:
        raise CliError(str(exc)) from exc
    channels = ", ".join(_CHANNELS_FR[Suppressed(row.channel)] for row in lifted)
    console.print(
        f"Désinscription LEVÉE pour {lifted[0].address} ({channels}) par {actor()} : {why.strip()}. "
        "La levée reste inscrite dans « synergie optout list --lifted »."
    )
