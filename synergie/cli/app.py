"""The ``synergie`` command line, for staff: French messages, rich tables and progress bars."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from models.enums import Channel
from synergie.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Synergie : le parcours des entreprises d'une démarche d'écologie industrielle et territoriale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(
    help="Campagnes : le programme d'un territoire pour une année.", no_args_is_help=True
)
mail_app = typer.Typer(help="Courriers électroniques : aperçu et envoi.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(mail_app, name="mail")


def _add_subcommands() -> None:
    # Imported here: those modules import their helpers (console, sessions) from this one.
    from synergie.cli_calls import callers_app, calls_app
    from synergie.cli_visits import staff_app, visits_app

    app.add_typer(callers_app, name="callers")
    app.add_typer(calls_app, name="calls")
    app.add_typer(staff_app, name="staff")
    app.add_typer(visits_app, name="visits")


console = Console()
err = Console(stderr=True)
DEMO_CAMPAIGN = "Pays de Nuits-Saint-Georges (démonstration)"


class CliError(Exception):
    """An error to show staff as one line, without a traceback."""


def main() -> None:
    """Entry point of the console script: known errors become one clear line and exit code 1."""
    from models.companies import CompanyNotFound, StageConflict
    from models.db import DatabaseError
    from models.stages import StageTransitionError
    from synergie.listing import ListingFileError
    from synergie.mailing import CampaignNotFound
    from synergie.rendering import TemplateProblem

    known = (CliError, SettingsError, DatabaseError, ListingFileError, StageTransitionError,
             CompanyNotFound, StageConflict, CampaignNotFound, TemplateProblem)  # fmt: skip
    try:
        app()
    except known as exc:
        err.print(f"[bold red]Erreur :[/] {exc}")
        sys.exit(1)


def _settings() -> Settings:
    settings = load_settings()
    settings.ensure_dirs()
    return settings


@contextmanager
def _prefect_notice() -> Iterator[None]:
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            "[dim]Aucun serveur Prefect configuré (PREFECT_API_URL) : démarrage d'une API locale "
            "temporaire, comptez 15 à 20 secondes…[/]"
        )
        # The temporary server's telemetry would call Prefect's servers, and at start-up it
        # races that server's own SQLite database, printing a "database is locked" traceback.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    yield


@contextmanager
def _progress_bar() -> Iterator[None]:
    from synergie.progress import progress_to

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def sink(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what.capitalize(), total=total)
            progress.update(tasks[what], completed=done, total=total)

        with progress_to(sink):
            yield


@app.command()
def init() -> None:
    """Crée ou met à jour la base de données (migrations Alembic)."""
    from models.db import upgrade_database

    settings = _settings()
    revision = upgrade_database(settings.db_url)
    console.print(f"Base de données prête (révision {revision}).")


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="Fichier CSV : format Synergie ou SIRENE StockEtablissement")
    ],
    commune: Annotated[
        list[str] | None, typer.Option("--commune", help="Code commune INSEE à garder (répétable)")
    ] = None,
    naf: Annotated[
        list[str] | None, typer.Option("--naf", help="Début de code NAF à garder (répétable)")
    ] = None,
    min_staff_band: Annotated[
        str | None, typer.Option(help="Tranche d'effectifs INSEE minimale, ex. 11")
    ] = None,
    include_closed: Annotated[bool, typer.Option(help="Garder les établissements fermés")] = False,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier sans rien écrire")] = False,
) -> None:
    """Importe une liste d'entreprises (flow import_listing)."""
    from pydantic import ValidationError

    from flows.import_listing import ImportListingParams
    from flows.import_listing import import_listing as import_flow
    from synergie.listing import detect_layout

    _settings()
    detect_layout(path)  # an unreadable file fails here, before Prefect starts
    try:
        params = ImportListingParams(
            path=str(path.resolve()),
            communes=commune or [],
            naf_prefixes=naf or [],
            min_staff_band=min_staff_band,
            include_closed=include_closed,
            dry_run=dry_run,
        )
    except ValidationError as exc:
        raise CliError(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from exc
    with _prefect_notice(), _progress_bar():
        counts = import_flow(params)
    _print_import(counts, dry_run)


def _print_import(counts: dict[str, Any], dry_run: bool) -> None:
    table = Table(title="Importation" + (" (essai à blanc, rien n'a été écrit)" if dry_run else ""))
    table.add_column("")
    table.add_column("Nombre", justify="right")
    table.add_row("Lignes lues", str(counts["rows_read"]))
    table.add_row("Hors filtres", str(counts["filtered_out"]))
    table.add_row("Nouvelles entreprises", str(counts["created"]))
    table.add_row("Déjà connues (mises à jour)", str(counts["updated"]))
    table.add_row("Lignes rejetées", f"[red]{counts['rejected']}[/]" if counts["rejected"] else "0")
    console.print(table)
    if counts["rejected"]:
        console.print(
            "Les lignes rejetées et leur motif sont dans le dossier des rapports (var/reports)."
        )


@app.command()
def companies(
    stage: Annotated[str | None, typer.Option(help="Étape, ex. listed, contacted")] = None,
    commune: Annotated[str | None, typer.Option(help="Code commune INSEE")] = None,
    naf: Annotated[str | None, typer.Option(help="Début de code NAF")] = None,
    search: Annotated[str | None, typer.Option(help="Texte cherché dans le nom")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Liste les entreprises, avec filtres."""
    from models import STAGE_LABELS_FR, Stage
    from models.companies import list_companies

    chosen = _parse_stage(stage) if stage else None
    with _session() as session:
        rows = list_companies(
            session=session,
            stage=chosen,
            commune_code=commune,
            naf_prefix=naf,
            search=search,
            limit=limit,
        )
        table = Table(title=f"Entreprises ({len(rows)})")
        for column in ("SIRET", "Nom", "NAF", "Commune", "Étape"):
            table.add_column(column)
        for company in rows:
            table.add_row(
                company.siret or "—",
                company.name,
                company.naf_code or "—",
                company.commune or company.commune_code or "—",
                STAGE_LABELS_FR[Stage(company.stage)],
            )
    console.print(table)


def _parse_stage(value: str) -> Any:
    from models import Stage

    try:
        return Stage(value)
    except ValueError:
        raise CliError(
            f"étape inconnue « {value} » ; étapes : {', '.join(s.value for s in Stage)}"
        ) from None


@contextmanager
def _session() -> Iterator[Any]:
    from models.db import make_engine, require_schema, session_scope

    engine = make_engine(_settings().db_url)
    try:
        require_schema(engine)
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


@app.command()
def stage(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
    target: Annotated[str, typer.Argument(metavar="STAGE", help="Nouvelle étape")],
    why: Annotated[str, typer.Option("--why", help="Raison, gardée dans l'historique")],
    by: Annotated[
        str | None, typer.Option(help="Votre nom (par défaut : l'utilisateur système)")
    ] = None,
) -> None:
    """Change l'étape d'une entreprise à la main, selon les règles du parcours."""
    from models import STAGE_LABELS_FR
    from models.companies import get_company_by_siret, move_company

    chosen = _parse_stage(target)
    if not why.strip():
        raise CliError("indiquez la raison du changement avec --why")
    with _session() as session:
        company = get_company_by_siret(session=session, siret=siret.replace(" ", ""))
        change = move_company(
            session=session,
            company=company,
            target=chosen,
            why=why.strip(),
            actor=f"staff:{by or getpass.getuser()}",
            now=datetime.now(UTC),
        )
        console.print(
            f"{company.name} : {STAGE_LABELS_FR[change.from_stage]} → [bold]{STAGE_LABELS_FR[change.to_stage]}[/]"
        )


@app.command()
def funnel() -> None:
    """Affiche l'entonnoir des étapes, comparé au cas de référence (60 → 30 → 15)."""
    with _session() as session:
        _print_funnel(session)


def _print_funnel(session: Any) -> None:
    from models import STAGE_LABELS_FR
    from synergie.reporting import exits, funnel

    table = Table(title="Entonnoir des entreprises")
    table.add_column("Étape")
    table.add_column("Y sont", justify="right")
    table.add_column("L'ont atteinte", justify="right")
    table.add_column("Référence", justify="right")
    for step in funnel(session=session):
        table.add_row(
            step.label, str(step.now), str(step.reached), str(step.seed) if step.seed else ""
        )
    console.print(table)
    left = {STAGE_LABELS_FR[s]: n for s, n in exits(session=session).items() if n}
    if left:
        console.print("Sorties : " + ", ".join(f"{label} {n}" for label, n in left.items()))


@campaign_app.command("add")
def campaign_add(
    name: Annotated[
        str, typer.Argument(help="Nom de la campagne, ex. « Pays de Nuits-Saint-Georges »")
    ],
    year: Annotated[int, typer.Option(min=2000, max=2100, help="Année")] = datetime.now(UTC).year,
    commune: Annotated[
        list[str] | None, typer.Option("--commune", help="Code commune INSEE couvert (répétable)")
    ] = None,
) -> None:
    """Crée une campagne (un territoire, une année)."""
    from models import Campaign

    with _session() as session:
        session.add(Campaign(name=name.strip(), year=year, communes=sorted(set(commune or []))))
    console.print(f"Campagne « {name} » {year} créée ({len(commune or [])} commune(s)).")


@campaign_app.command("list")
def campaign_list() -> None:
    """Liste les campagnes."""
    from sqlmodel import col, select

    from models import Campaign

    with _session() as session:
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
    from synergie.mailing import MailComposer, Recipient, sender_domain
    from synergie.outbox import ClaimedMessage, message_key, new_message_id
    from synergie.rendering import MailTemplates

    settings = _settings()
    with _session() as session:
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

    settings = _settings()
    params = MailingParams(
        campaign=campaign, template=template, batch_size=batch_size, max_per_run=limit,
        rate_per_minute=rate, dry_run=dry_run,
    )  # fmt: skip
    with _prefect_notice(), _progress_bar():
        result = asyncio.run(mailing(params))
    _print_mailing(result, dry_run, settings)


def _print_mailing(result: dict[str, int], dry_run: bool, settings: Settings) -> None:
    if dry_run:
        console.print(
            f"Essai à blanc : {result['would_send']} message(s) partiraient ; rien n'a été écrit ni envoyé."
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


@app.command()
def portal(
    host: Annotated[str, typer.Option(help="Adresse d'écoute")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port")] = 8000,
) -> None:
    """Sert le portail des entreprises (désinscription…)."""
    from portal.server import serve

    serve(_settings(), host=host, port=port)


@app.command()
def demo() -> None:
    """Démonstration sur le territoire fictif de Nuits-Saint-Georges, dans une base neuve."""
    from flows.import_listing import ImportListingParams
    from flows.import_listing import import_listing as import_flow
    from flows.mailing import MailingParams, mailing
    from models import Campaign
    from models.companies import list_companies
    from models.db import upgrade_database
    from synergie import SAMPLE_LISTING

    base = _settings()
    demo_dir = (base.data_dir / "demo").resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    # Flows read their settings from the environment, as a worker would.
    os.environ["SYNERGIE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("SYNERGIE_DATABASE_URL", None)
    os.environ["SYNERGIE_EMAIL_BACKEND"] = "file"  # the demo never sends real e-mail
    settings = _settings()
    console.rule("[bold]Synergie — démonstration")
    console.print(f"Données de la démonstration : {demo_dir}")
    upgrade_database(settings.db_url)
    console.print("1. Base SQLite neuve créée.")
    console.print(
        f"2. Importation de la liste fictive ({SAMPLE_LISTING.name}) par le flow import_listing."
    )
    with _prefect_notice(), _progress_bar():
        counts = import_flow(ImportListingParams(path=str(SAMPLE_LISTING), dry_run=False))
    _print_import(counts, dry_run=False)
    with _session() as session:
        communes = sorted(
            {
                c.commune_code
                for c in list_companies(session=session, limit=10_000)
                if c.commune_code
            }
        )
        session.add(Campaign(name=DEMO_CAMPAIGN, year=datetime.now(UTC).year, communes=communes))
    console.print(f"3. Campagne « {DEMO_CAMPAIGN} » créée ({len(communes)} communes).")
    console.print("4. Premier courrier envoyé par le flow mailing, dans la boîte d'envoi fichier.")
    with _progress_bar():
        result = asyncio.run(
            mailing(
                MailingParams(
                    campaign=DEMO_CAMPAIGN, dry_run=False, rate_per_minute=None, max_per_run=10_000
                )
            )
        )
    _print_mailing(result, False, settings)
    _demo_calls_and_visits(settings)
    with _session() as session:
        _print_funnel(session)


# What the demo's callers hear, in turn: about half the companies want a visit, as in the seed.
DEMO_OUTCOMES = ("interested", "no-answer", "interested", "refused", "interested", "callback")


def _demo_calls_and_visits(settings: Settings) -> None:
    """Demo steps 5–7: a day of calls, visits booked for the interested, one moved, one cancelled."""
    from datetime import timedelta

    from sqlmodel import col, select

    from flows.call_reminders import CallRemindersParams, call_reminders
    from flows.visits import VisitsParams, visits
    from models import CallOutcome, CallTask, Company, Visit, VisitStatus
    from synergie.calls import add_caller, log_call
    from synergie.rendering import MailTemplates
    from synergie.visits import add_staff, cancel_visit, reschedule_visit

    with _session() as session:
        for number, name in enumerate(
            ("Bénévole A (fictif)", "Bénévole B (fictif)", "Bénévole C (fictif)")
        ):
            add_caller(session=session, name=name, phone=f"+3363998990{number}",
                       email=f"benevole{number + 1}@example.org", per_day=20, days=range(1, 8))  # fmt: skip
        add_staff(session=session, name="Chargée de mission (fictive)", email="eit@example.org")
    console.print(
        "5. Trois bénévoles fictifs reçoivent la liste d'appels du jour (flow call_reminders)."
    )
    with _progress_bar():
        call_reminders(CallRemindersParams(after_days=0, dry_run=False))
    now = datetime.now(UTC)
    with _session() as session:
        called = session.exec(
            select(Company).join(CallTask, col(CallTask.company_id) == Company.id)
            .where(col(CallTask.outcome).is_(None)).order_by(Company.name)
        ).all()  # fmt: skip
        for index, company in enumerate(called):
            outcome = CallOutcome(DEMO_OUTCOMES[index % len(DEMO_OUTCOMES)])
            log_call(
                session=session, company=company, outcome=outcome, notes="appel de démonstration",
                on=(now + timedelta(days=7)).date() if outcome == CallOutcome.CALLBACK else None,
                actor="staff:démo", now=now, call_minutes=settings.call_minutes,
            )  # fmt: skip
    console.print(f"   {len(called)} appels notés (intéressée, refus, pas de réponse, rappel…).")
    console.print(
        "6. Visites réservées pour les entreprises intéressées, invitations iCal (flow visits)."
    )
    with _progress_bar():
        visits(VisitsParams(dry_run=False))
    with _session() as session:
        booked = session.exec(
            select(Visit).where(Visit.status == VisitStatus.BOOKED).order_by(col(Visit.id))
        ).all()
        templates = MailTemplates(settings.templates_dir)
        if len(booked) >= 2:
            reschedule_visit(session=session, settings=settings, templates=templates, visit=booked[0],
                             now=now, actor="staff:démo")  # fmt: skip
            cancel_visit(session=session, settings=settings, templates=templates, visit=booked[1],
                         now=now, actor="staff:démo", why="l'entreprise a demandé à annuler")  # fmt: skip
    from synergie.cli_visits import _send_now

    _send_now(settings, Channel.EMAIL)
    console.print(
        "7. Une visite déplacée (même UID, SEQUENCE + 1) et une annulée (METHOD:CANCEL) : "
        f"voir {settings.outbox_dir / 'email'}"
    )


_add_subcommands()

if __name__ == "__main__":
    main()
