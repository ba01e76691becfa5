"""The demo command: a fictional territory taken through the pipeline in a fresh database."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime

import typer

from models.enums import Channel
from synergie.cli.common import (
    cli_settings,
    console,
    db_session,
    prefect_notice,
    progress_bar,
    send_now,
)
from synergie.cli.listing import print_import
from synergie.cli.mailing import print_mailing
from synergie.cli.reporting import print_funnel
from synergie.settings import Settings

app = typer.Typer()

DEMO_CAMPAIGN = "Pays de Nuits-Saint-Georges (démonstration)"


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

    base = cli_settings()
    demo_dir = (base.data_dir / "demo").resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    # Flows read their settings from the environment, as a worker would.
    os.environ["SYNERGIE_DATA_DIR"] = str(demo_dir)
    os.environ.pop("SYNERGIE_DATABASE_URL", None)
    # The demo never reaches a real person: its e-mails and its SMS (to fictional callers and
    # companies) are written to files, even where SMTP or Twilio is configured.
    os.environ["SYNERGIE_EMAIL_BACKEND"] = "file"
    os.environ["SYNERGIE_SMS_BACKEND"] = "file"
    settings = cli_settings()
    console.rule("[bold]Synergie — démonstration")
    console.print(f"Données de la démonstration : {demo_dir}")
    upgrade_database(settings.db_url)
    console.print("1. Base SQLite neuve créée.")
    console.print(
        f"2. Importation de la liste fictive ({SAMPLE_LISTING.name}) par le flow import_listing."
    )
    with prefect_notice(), progress_bar():
        counts = import_flow(ImportListingParams(path=str(SAMPLE_LISTING), dry_run=False))
    print_import(counts, dry_run=False)
    with db_session() as session:
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
    with progress_bar():
        result = asyncio.run(
            mailing(
                MailingParams(
                    campaign=DEMO_CAMPAIGN, dry_run=False, rate_per_minute=None, max_per_run=10_000
                )
            )
        )
    print_mailing(result, False, settings)
    _demo_calls_and_visits(settings)
    with db_session() as session:
        print_funnel(session)
    _demo_synergies(settings)


# What the demo's callers hear, in turn: about half the companies want a visit, as in the seed.
DEMO_OUTCOMES = ("interested", "no-answer", "interested", "refused", "interested", "callback")


def _demo_calls_and_visits(settings: Settings) -> None:
    """Demo steps 5–7: a day of calls, visits booked for the interested, one moved, one cancelled."""
    from datetime import timedelta

    from sqlmodel import col, select

    from flows.call_reminders import CallRemindersParams, call_reminders
    from flows.visits import VisitsParams, visits
    from models import CallOutcome, CallTask, Company, Visit, VisitStatus
    from synergie.calls.callers import add_caller
    from synergie.calls.outcomes import log_call
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import add_staff, cancel_visit, reschedule_visit

    with db_session() as session:
        for number, name in enumerate(
            ("Bénévole A (fictif)", "Bénévole B (fictif)", "Bénévole C (fictif)")
        ):
            add_caller(session=session, name=name, phone=f"+3363998990{number}",
                       email=f"benevole{number + 1}@example.org", per_day=20, days=range(1, 8))  # fmt: skip
        add_staff(session=session, name="Chargée de mission (fictive)", email="eit@example.org")
    console.print(
        "5. Trois bénévoles fictifs reçoivent la liste d'appels du jour (flow call_reminders)."
    )
    with progress_bar():
        call_reminders(CallRemindersParams(after_days=0, dry_run=False))
    now = datetime.now(UTC)
    with db_session() as session:
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
    with progress_bar():
        visits(VisitsParams(dry_run=False))
    with db_session() as session:
        booked = session.exec(
            select(Visit).where(Visit.status == VisitStatus.BOOKED).order_by(col(Visit.id))
        ).all()
        templates = MailTemplates(settings.templates_dir)
        if len(booked) >= 2:
            reschedule_visit(session=session, settings=settings, templates=templates, visit=booked[0],
                             now=now, actor="staff:démo")  # fmt: skip
            cancel_visit(session=session, settings=settings, templates=templates, visit=booked[1],
                         now=now, actor="staff:démo", why="l'entreprise a demandé à annuler")  # fmt: skip

    send_now(settings, Channel.EMAIL)
    console.print(
        "7. Une visite déplacée (même UID, SEQUENCE + 1) et une annulée (METHOD:CANCEL) : "
        f"voir {settings.outbox_dir / 'email'}"
    )


def _demo_synergies(settings: Settings) -> None:
    """Demo steps 8–9: matching on the fictional flows, two synergies moved along, the report."""
    from sqlmodel import select

    from models import Company, SynergyStatus
    from models.db import make_engine
    from synergie.reporting.programme import write_programme_report
    from synergie.synergies.demo_flows import demo_territory
    from synergie.synergies.lifecycle import PartySpec, create_synergy, move_synergy
    from synergie.synergies.matching import Kind, MatchSettings, candidates

    now = datetime.now(UTC)
    with db_session() as session:
        sites, flows = demo_territory(session.exec(select(Company)).all())
        found = candidates(sites, flows, MatchSettings(road_factor=settings.road_factor))
        console.print(
            f"8. Mise en relation sur {len(flows)} flux fictifs : {len(found)} synergie(s) candidate(s)."
        )
        for candidate in found[:4]:
            console.print(f"   {candidate.score:.0f} — {' / '.join(candidate.companies)}")
            for reason in candidate.reasons:
                console.print(f"      · {reason}")
        best = next((c for c in found if c.kind == Kind.SUBSTITUTION), None)
        if best is None:
            return
        cardboard = create_synergy(
            session=session, title="Chutes de carton réutilisées pour l'emballage",
            parties=[PartySpec(int(best.site_ids[0]), "giver"), PartySpec(int(best.site_ids[1]), "taker")],  # type: ignore[call-overload]
            flow_ids=[int(i) for i in best.flow_ids],  # type: ignore[call-overload]
            trips_per_month=3, km_per_trip=360, tonnes_per_year=24, actor="staff:démo", now=now,
        )  # fmt: skip
        for status in (SynergyStatus.STUDY, SynergyStatus.AGREED):
            move_synergy(session=session, synergy_id=cardboard.id, target=status,  # type: ignore[arg-type]
                         why="démonstration", actor="staff:démo", now=now)  # fmt: skip
        printer = next((s for s in sites if s.company.startswith("Imprimerie")), sites[0])
        paper = create_synergy(
            session=session, title="Papier broyé pour la collectivité", actor="staff:démo",
            parties=[PartySpec(int(printer.id), "giver"), PartySpec(None, "taker")],  # type: ignore[call-overload]
            now=now,
        )  # fmt: skip
        move_synergy(session=session, synergy_id=paper.id, target=SynergyStatus.STUDY,  # type: ignore[arg-type]
                     why="démonstration", actor="staff:démo", now=now)  # fmt: skip
    console.print(
        "   Synergie « carton » conclue (3 trajets/mois de 360 km évités), "
        "synergie « papier broyé » avec la collectivité à l'étude."
    )
    engine = make_engine(settings.db_url)
    try:
        written = write_programme_report(engine=engine, settings=settings, now=now)
    finally:
        engine.dispose()
    console.print(f"9. Bilan de la démarche : {written.path}")
