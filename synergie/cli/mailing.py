"""The campaign and mail commands: a territory's programme for a year, previews and sends."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from models.enums import Channel
from synergie.cli.common import (
    CliError,
    check_before_flow,
    cli_settings,
    console,
    db_session,
    prefect_notice,
    progress_bar,
)
from synergie.settings import Settings

campaign_app = typer.Typer(
    help="Campagnes : le programme d'un territoire pour une année.", no_args_is_help=True
)
mail_app = typer.Typer(help="Courriers électroniques : aperçu et envoi.", no_args_is_help=True)


@campaign_app.command("add")
def campaign_add(
    name: Annotated[
        str, typer.Argument(help="Nom de la campagne, ex. « Pays de Nuits-Saint-Georges »")
    ],
    year: Annotated[int, typer.Option(min=2000, max=2100, help="Année")] = datetime.now(UTC).year,
    commune: Annotated[
        list[str] | None,
        typer.Option(
            "--commune",
            help="Commune couverte (répétable) : code INSEE, nom, code postal, ou « 21700 Nuits-Saint-Georges »",
        ),
    ] = None,
) -> None:
    """Crée une campagne (un territoire, une année)."""
    from models import Campaign
    from synergie.listing.communes import commune_codes

    try:
        codes = commune_codes(commune or [])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    with db_session() as session:
        session.add(Campaign(name=name.strip(), year=year, communes=codes))
    console.print(f"Campagne « {name} » {year} créée ({len(codes)} commune(s)).")


@campaign_app.command("list")
def campaign_list() -> None:
    """Liste les campagnes."""
    from sqlmodel import col, select

    from models import Campaign

    with db_session() as session:
        table = Table(title="Campagnes")
        for column in ("Nom", "Année", "Communes"):
            table.add_column(column)
        for campaign in session.exec(
            select(Campaign).order_by(col(Campaign.year), col(Campaign.name))
        ):
            table.add_row(
                campaign.name, str(campaign.year), ", ".join(campaign.communes) or "toutes"
            )
    console.print(table)


@mail_app.command("preview")
def mail_preview(
    company: Annotated[str, typer.Option("--company", help="SIRET de l'entreprise")],
    template: Annotated[str, typer.Option(help="Modèle de message")] = "premier-courrier",
) -> None:
    """Affiche un message exactement tel qu'il partirait, en-têtes compris."""
    from sqlmodel import select

    from channels.mime import compose_email
    from models import Contact
    from models.companies import get_company_by_siret
    from synergie.mailing.campaigns import MailComposer, Recipient, sender_domain
    from synergie.messaging.outbox import ClaimedMessage, message_key, new_message_id
    from synergie.messaging.rendering import MailTemplates

    settings = cli_settings()
    with db_session() as session:
        found = get_company_by_siret(session=session, siret=company.replace(" ", ""))
        contact = session.exec(
            select(Contact).where(Contact.company_id == found.id, Contact.email.is_not(None))  # type: ignore[union-attr]
        ).first()
        if contact is None:
            raise CliError(f"{found.name} n'a aucun contact avec une adresse e-mail")
        recipient = Recipient(contact.id, contact.public_id, found.id, contact.email or "",  # type: ignore[arg-type]
                              contact.name, found.name, found.commune)  # fmt: skip
    composer = MailComposer(
        settings=settings, templates=MailTemplates(settings.templates_dir), template=template
    )
    message = ClaimedMessage(
        id=0, key=message_key(campaign_id=None, step=template, recipient=f"contact:{contact.id}", channel=Channel.EMAIL),
        campaign_id=None, step=template, contact_id=contact.id, company_id=found.id, to_address=recipient.email,
        message_id=new_message_id(sender_domain(settings)), attempts=0, context=None,
    )  # fmt: skip
    raw = compose_email(
        composer.compose(message, recipient), sender=settings.mail_from, reply_to=settings.reply_to
    )
    sys.stdout.write(raw.decode("utf-8", "replace"))


@mail_app.command("send")
def mail_send(
    template: Annotated[
        str, typer.Option(help="Modèle de message (nomme l'étape)")
    ] = "premier-courrier",
    campaign: Annotated[
        str | None, typer.Option(help="Campagne (par défaut : la plus récente)")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Messages par lot (moins si le débit est limité)")
    ] = 500,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Messages au plus")] = 500,
    rate: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="Messages par minute au plus")
    ] = 120,
    dry_run: Annotated[
        bool, typer.Option(help="Montrer ce qui partirait sans rien envoyer")
    ] = False,
) -> None:
    """Envoie une étape de campagne par courrier électronique (flow mailing)."""
    from flows.mailing import MailingParams, mailing
    from synergie.mailing.campaigns import MailComposer, find_campaign
    from synergie.messaging.rendering import MailTemplates

    settings = cli_settings()
    # What can be checked without Prefect is checked first: its temporary API takes 15 s or more.
    with db_session() as session:
        find_campaign(session=session, name=campaign)
    if not dry_run:
        check_before_flow(settings, email=True)
    templates = MailTemplates(settings.templates_dir)
    MailComposer(settings=settings, templates=templates, template=template).preflight()
    params = MailingParams(
        campaign=campaign or "", template=template, batch_size=batch_size, max_per_run=limit,
        rate_per_minute=rate, dry_run=dry_run,
    )  # fmt: skip
    with prefect_notice(), progress_bar():
        result = asyncio.run(mailing(params))
    print_mailing(result, dry_run, settings)


def print_mailing(result: dict[str, int], dry_run: bool, settings: Settings) -> None:
    if dry_run:
        console.print(
            f"Essai à blanc : {result['would_send']} message(s) partiraient ; rien n'a été écrit ni envoyé."
        )
        no_code, elsewhere = (
            result.get("outside_no_code", 0),
            result.get("outside_other_commune", 0),
        )
        if no_code or elsewhere:
            console.print(
                f"{no_code + elsewhere} entreprise(s) du listing hors des communes de la campagne : "
                f"{no_code} sans code commune (complétez code postal et commune, puis importez "
                f"de nouveau), {elsewhere} dans une autre commune."
            )
        return
    table = Table(title="Envoi")
    table.add_column("")
    table.add_column("Messages", justify="right")
    table.add_row("Nouveaux en file", str(result["enqueued"]))
    table.add_row("Envoyés pendant ce passage", str(result["run_sent"]))
    table.add_row("Adresses refusées", str(result["run_bounced"]))
    table.add_row("Annulés (désinscription)", str(result["run_cancelled"]))
    table.add_row("En attente d'un nouvel essai", str(result["queued"]))
    table.add_row("Envoyés au total pour cette étape", str(result["sent"]))
    console.print(table)
    if settings.email_backend == "file":
        console.print(f"Messages écrits dans {settings.outbox_dir / 'email'} (aucun envoi réel).")
