"""The ``synergie staff`` and ``synergie visits`` commands: team, bookings, answers and closing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from synergie import french
from synergie.cli.common import (
    CliError,
    actor,
    check_before_flow,
    cli_settings,
    console,
    db_session,
    prefect_notice,
    send_now,
)

staff_app = typer.Typer(help="Équipe : qui fait les visites, et quand.", no_args_is_help=True)
visits_app = typer.Typer(
    help="Visites : réservation, invitations, réponses, rappels et compte rendu.",
    no_args_is_help=True,
)


@contextmanager
def _french_errors() -> Iterator[None]:
    """Turn the errors a person can cause into one CliError line."""
    from synergie.calendar.itip import InvalidReply
    from synergie.visits.diary import SchedulingError
    from synergie.visits.lifecycle import VisitError

    try:
        yield
    except (VisitError, SchedulingError, InvalidReply) as exc:
        raise CliError(str(exc)) from exc


def _local(moment: datetime, settings: Any) -> str:
    return french.short_moment(moment, settings.tz)


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="Nom affiché, ex. « Claire Martin »")],
    email: Annotated[
        str, typer.Option("--email", help="Adresse e-mail (organisatrice des visites)")
    ],
    phone: Annotated[
        str | None, typer.Option("--phone", help="Téléphone, donné aux entreprises")
    ] = None,
) -> None:
    """Ajoute un membre de l'équipe, disponible du lundi au vendredi, 9 h–12 h 30 et 13 h 30–17 h 30."""
    from synergie.visits.lifecycle import add_staff

    with _french_errors(), db_session() as session:
        member = add_staff(session=session, name=name, email=email, phone=phone)
        console.print(f"{member.name} ajouté(e) à l'équipe (n° {member.id}), horaires par défaut.")


@staff_app.command("list")
def staff_list() -> None:
    """Liste l'équipe."""
    from sqlmodel import col, select

    from models import StaffMember

    with db_session() as session:
        table = Table(title="Équipe")
        for column in ("N°", "Nom", "E-mail", "Téléphone", "Active"):
            table.add_column(column)
        for member in session.exec(select(StaffMember).order_by(col(StaffMember.id))):
            table.add_row(str(member.id), member.name, member.email, member.phone or "—",
                          "oui" if member.active else "non")  # fmt: skip
    console.print(table)


def _parse_slot(slot: str, settings: Any) -> datetime:

    try:
        moment = datetime.fromisoformat(slot)
    except ValueError:
        raise CliError(
            f"créneau illisible « {slot} » : écrivez-le ainsi : 2026-11-12T10:00"
        ) from None
    # A time without offset is read in the programme's time zone, as staff think of it.
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


@visits_app.command("book")
def visits_book(
    company: Annotated[str | None, typer.Option("--company", help="SIRET de l'entreprise")] = None,
    slot: Annotated[
        str | None, typer.Option("--slot", help="Début de la visite, ex. 2026-11-12T10:00")
    ] = None,
) -> None:
    """Réserve les visites : toutes les entreprises intéressées, ou une seule (propositions, ou --slot)."""
    from flows.visits import VisitsParams, visits
    from synergie.visits.lifecycle import propose

    settings = cli_settings()
    if slot is not None and company is None:
        raise CliError(
            "un créneau (--slot) se choisit pour une entreprise : ajoutez --company SIRET"
        )
    if company is not None and slot is None:
        with _french_errors(), db_session() as session:
            slots = propose(session=session, settings=settings, now=datetime.now(UTC))
        if not slots:
            raise CliError("aucun créneau libre dans l'horizon de réservation")
        table = Table(title="Créneaux proposés")
        for column in ("Visite", "Préparation dès", "Membre n°", "Commande"):
            table.add_column(column)
        for item in slots:
            choice = f"{item.visit_start.astimezone(settings.tz):%Y-%m-%dT%H:%M}"
            table.add_row(_local(item.visit_start, settings), _local(item.reserved_start, settings),
                          str(item.staff_id), f"synergie visits book --company {company} --slot {choice}")  # fmt: skip
        console.print(table)
        return
    chosen = _parse_slot(slot, settings) if slot is not None else None
    if chosen is not None and company is not None:
        _check_slot(company, chosen)
    check_before_flow(settings, email=True)
    params = VisitsParams(company_siret=company or "", slot=chosen, dry_run=False)
    with prefect_notice(), _french_errors():
        result = visits(params)
    console.print(
        f"{result['booked']} visite(s) réservée(s), {result['email_sent']} invitation(s) envoyée(s)."
    )
    if settings.email_backend == "file":
        console.print(f"Messages écrits dans {settings.outbox_dir / 'email'} (aucun envoi réel).")


def _check_slot(company: str, chosen: datetime) -> None:
    """Refuse a hand-picked slot (check_booking) before Prefect starts, with the scheduler's French reason."""
    from models.companies import get_company_by_siret
    from synergie.visits.lifecycle import book_chosen_slot, load_diary

    settings = cli_settings()
    with _french_errors(), db_session() as session:
        get_company_by_siret(session=session, siret=company.replace(" ", ""))
        diary = load_diary(session=session, settings=settings)
        book_chosen_slot(diary, chosen, now=datetime.now(UTC))


@visits_app.command("remind")
def visits_remind() -> None:
    """Envoie le SMS de rappel des visites de demain (flow visit_reminders)."""
    from flows.visit_reminders import VisitRemindersParams, visit_reminders

    settings = cli_settings()
    check_before_flow(settings, sms=True)
    with prefect_notice():
        result = visit_reminders(VisitRemindersParams())
    console.print(
        f"{result['enqueued']} rappel(s) mis en file, {result['sms_sent']} SMS envoyé(s)."
    )
    if settings.sms_backend == "file":
        console.print(f"SMS écrits dans {settings.outbox_dir / 'sms'} (aucun envoi réel).")


@visits_app.command("reply")
def visits_reply(
    path: Annotated[
        Path, typer.Argument(help="Réponse d'agenda reçue (.ics)", exists=True, dir_okay=False)
    ],
) -> None:
    """Enregistre la réponse d'une entreprise (acceptée, refusée, provisoire) ; un refus libère le créneau."""
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import record_reply

    settings = cli_settings()
    labels = {"accepted": "acceptée", "declined": "refusée", "tentative": "provisoire"}
    with _french_errors(), db_session() as session:
        outcome = record_reply(
            session=session, settings=settings, templates=MailTemplates(settings.templates_dir),
            data=path.read_bytes(), now=datetime.now(UTC), actor=actor(),
        )  # fmt: skip
        uid = outcome.visit.uid
    if outcome.stale:
        console.print(f"Réponse à une version dépassée de la visite {uid} : rien n'a changé.")
    elif outcome.cancelled:
        console.print(f"Visite {uid} refusée : créneau libéré, entreprise renvoyée aux appels.")
    else:
        console.print(
            f"Visite {uid} : invitation {labels.get(outcome.partstat, outcome.partstat)}."
        )


@visits_app.command("cancel")
def visits_cancel(siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")]) -> None:
    """Annule la visite planifiée d'une entreprise et envoie l'annulation d'agenda."""
    from models.enums import Channel
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import cancel_visit, find_visit

    settings = cli_settings()
    with _french_errors(), db_session() as session:
        visit = find_visit(session=session, siret=siret)
        result = cancel_visit(
            session=session, settings=settings, templates=MailTemplates(settings.templates_dir),
            visit=visit, now=datetime.now(UTC), actor=actor(),
        )  # fmt: skip
    sent = send_now(settings, Channel.EMAIL) if result.enqueued else 0
    console.print(f"Visite de {result.company} annulée ; {sent} annulation(s) envoyée(s).")


@visits_app.command("reschedule")
def visits_reschedule(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
    slot: Annotated[
        str | None, typer.Option("--slot", help="Nouveau début, ex. 2026-11-12T10:00")
    ] = None,
) -> None:
    """Déplace la visite d'une entreprise (au plus tôt, ou à --slot) et envoie l'invitation mise à jour."""
    from models.enums import Channel
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import find_visit, reschedule_visit

    settings = cli_settings()
    chosen = _parse_slot(slot, settings) if slot else None
    with _french_errors(), db_session() as session:
        result = reschedule_visit(
            session=session, settings=settings, templates=MailTemplates(settings.templates_dir),
            visit=find_visit(session=session, siret=siret), now=datetime.now(UTC), actor=actor(),
            visit_start=chosen,
        )  # fmt: skip
        when = _local(result.visit.starts_at, settings)
    sent = send_now(settings, Channel.EMAIL) if result.enqueued else 0
    console.print(
        f"Visite de {result.company} déplacée au {when} ; {sent} invitation(s) envoyée(s)."
    )


@visits_app.command("done")
def visits_done(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise")],
    notes: Annotated[str, typer.Option("--notes", help="Compte rendu de la visite")],
) -> None:
    """Clôt une visite faite : étape « visitée », 2 h au registre, et le questionnaire des flux envoyé."""
    from models import Channel, Company
    from synergie.inventory.questionnaire import invite_to_inventory
    from synergie.messaging.rendering import MailTemplates
    from synergie.visits.lifecycle import close_visit, find_visit

    settings = cli_settings()
    now = datetime.now(UTC)
    with _french_errors(), db_session() as session:
        visit = find_visit(session=session, siret=siret)
        entry = close_visit(
            session=session, visit=visit, notes=notes, now=now, actor=actor(),
            timezone=settings.timezone,
        )  # fmt: skip
        company = session.get(Company, visit.company_id)
        queued = invite_to_inventory(
            session=session, settings=settings, templates=MailTemplates(settings.templates_dir),
            company=company, contact_id=visit.contact_id, now=now,
        )  # fmt: skip
        console.print(
            f"Visite close : {entry.hours:g} h de visite notées le {french.short_date(entry.day)}."
        )
    sent = send_now(settings, Channel.EMAIL) if queued else 0
    if queued:
        console.print(f"Questionnaire des flux envoyé ({sent} message(s) parti(s)).")
    else:
        console.print(
            "Questionnaire des flux non envoyé : pas d'adresse e-mail joignable pour ce contact."
        )


@visits_app.command("list")
def visits_list() -> None:
    """Liste les visites, les plus récentes d'abord."""
    from sqlmodel import col, select

    from models import Company, Visit

    settings = cli_settings()
    status_fr = {"booked": "planifiée", "cancelled": "annulée", "done": "faite"}
    answer_fr = {"needs-action": "sans réponse", "accepted": "acceptée", "declined": "refusée",
                 "tentative": "provisoire"}  # fmt: skip
    with db_session() as session:
        table = Table(title="Visites")
        for column in ("Entreprise", "SIRET", "Visite", "État", "Réponse", "Version"):
            table.add_column(column)
        rows = session.exec(
            select(Visit, Company).join(Company, col(Company.id) == col(Visit.company_id))
            .order_by(col(Visit.starts_at).desc()).limit(200)
        )  # fmt: skip
        for visit, company in rows:
            table.add_row(company.name, company.siret or "—", _local(visit.starts_at, settings),
                          status_fr[visit.status], answer_fr[visit.partstat], str(visit.sequence))  # fmt: skip
    console.print(table)
