"""The ``synergie meetings`` commands: plan, invite, follow answers, remind, move, cancel, note attendance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from synergie.cli.common import (
    CliError,
    cli_settings,
    console,
    db_session,
    prefect_notice,
    send_now,
)

meetings_app = typer.Typer(
    help="Rencontres trimestrielles : invitations avec agenda, réponses, liste d'attente, "
    "recommandations, rappels et présence.",
    no_args_is_help=True,
)

_STATUS_FR = {
    "planned": "prévue",
    "invited": "invitations envoyées",
    "held": "tenue",
    "cancelled": "annulée",
}


@contextmanager
def _french_errors() -> Iterator[None]:
    """Turn the errors a person can cause into one CliError line."""
    from models.companies import CompanyNotFound
    from synergie.meetings.planning import MeetingError
    from synergie.meetings.registrations import AnswerRefused

    try:
        yield
    except (MeetingError, AnswerRefused, CompanyNotFound) as exc:
        raise CliError(str(exc)) from exc


def _when(text: str, settings: Any, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"date illisible « {text} » ({option}) : écrivez-la ainsi : 2027-04-13T18:00"
        ) from None
    # A time without offset is read in the programme's time zone, as staff think of it.
    return moment if moment.tzinfo else moment.replace(tzinfo=settings.tz)


def _local(moment: datetime, settings: Any) -> str:
    return f"{moment.astimezone(settings.tz):%d/%m/%Y %H:%M}"


def _file_note(settings: Any) -> None:
    if settings.email_backend == "file":
        console.print(f"Messages écrits dans {settings.outbox_dir / 'email'} (aucun envoi réel).")


@meetings_app.command("add")
def meetings_add(
    title: Annotated[str, typer.Option("--title", help="Titre, ex. « Rencontre de printemps »")],
    at: Annotated[str, typer.Option("--at", help="Début, heure de Paris, ex. 2027-04-13T18:00")],
    until: Annotated[
        str | None, typer.Option("--until", help="Fin (par défaut : 3 h après le début)")
    ] = None,
    place: Annotated[
        str | None, typer.Option("--place", help="Lieu (par défaut : l'adresse de l'hôte)")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="SIRET de l'entreprise qui accueille")
    ] = None,
    capacity: Annotated[int, typer.Option("--capacity", min=1, help="Places (personnes)")] = 15,
    per_company: Annotated[
        int, typer.Option("--per-company", min=1, help="Personnes par entreprise")
    ] = 2,
    agenda: Annotated[str | None, typer.Option("--agenda", help="Programme, en français")] = None,
) -> None:
    """Prévoit une rencontre (format World Café par défaut) ; les invitations partent avec « meetings invite »."""
    from sqlmodel import col, select

    from models import Campaign
    from models.companies import get_company_by_siret
    from synergie.mailing.campaigns import sender_domain
    from synergie.meetings.planning import add_meeting

    settings = cli_settings()
    starts = _when(at, settings, "--at")
    ends = _when(until, settings, "--until") if until else None
    with _french_errors(), db_session() as session:
        company = (
            get_company_by_siret(session=session, siret=host.replace(" ", "")) if host else None
        )
        campaign = session.exec(select(Campaign).order_by(col(Campaign.id).desc())).first()
        meeting = add_meeting(
            session=session, title=title, starts_at=starts, ends_at=ends, place=place, host=company,
            capacity=capacity, per_company=per_company, agenda=agenda, now=datetime.now(UTC),
            domain=sender_domain(settings), campaign_id=campaign.id if campaign else None,
        )  # fmt: skip
        console.print(
            f"Rencontre n° {meeting.id} prévue le {_local(meeting.starts_at, settings)} : {meeting.place} "
            f"({meeting.capacity} places, {meeting.per_company} par entreprise). "
            f"Invitez avec « synergie meetings invite {meeting.id} »."
        )


@meetings_app.command("list")
def meetings_list() -> None:
    """Liste les rencontres, avec les inscrits et la liste d'attente."""
    from sqlmodel import col, select

    from models import Answer, Meeting
    from synergie.meetings.planning import summarise

    settings = cli_settings()
    table = Table(title="Rencontres")
    for column in ("N°", "Titre", "Début", "Lieu", "État", "Inscrits", "Attente", "Places"):
        table.add_column(column)
    with db_session() as session:
        for meeting in session.exec(select(Meeting).order_by(col(Meeting.starts_at))):
            summary = summarise(session=session, meeting=meeting)
            table.add_row(
                str(meeting.id), meeting.title, _local(meeting.starts_at, settings), meeting.place,
                _STATUS_FR[meeting.status], f"{len(summary.of(Answer.REGISTERED))} ({summary.people} pers.)",
                str(len(summary.of(Answer.WAITING))), str(meeting.capacity),
            )  # fmt: skip
    console.print(table)


@meetings_app.command("show")
def meetings_show(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
) -> None:
    """Montre une rencontre : inscrits, liste d'attente, refus, sans réponse, recommandations."""
    from models import ANSWER_LABELS_FR, Answer
    from synergie.meetings.planning import find_meeting, summarise

    settings = cli_settings()
    with _french_errors(), db_session() as session:
        meeting = find_meeting(session=session, meeting_id=meeting_id)
        summary = summarise(session=session, meeting=meeting)
        console.rule(f"[bold]Rencontre n° {meeting.id} : {meeting.title}")
        console.print(
            f"{meeting.format}, le {_local(meeting.starts_at, settings)} – {_local(meeting.ends_at, settings)}, "
            f"{meeting.place}. État : {_STATUS_FR[meeting.status]} (version {meeting.sequence}). "
            f"{summary.people}/{meeting.capacity} places prises, {meeting.per_company} par entreprise."
        )
        for answer in (
            Answer.REGISTERED,
            Answer.WAITING,
            Answer.MAYBE,
            Answer.DECLINED,
            Answer.NO_ANSWER,
        ):
            rows = summary.of(answer)
            table = Table(title=f"{ANSWER_LABELS_FR[answer].capitalize()} ({len(rows)})")
            for column in ("Entreprise", "SIRET", "Personnes", "Remarque", "Présente"):
                table.add_column(column)
            for registration, company in rows:
                came = {True: "oui", False: "non", None: ""}[registration.attended]
                table.add_row(company.name, company.siret or "—", str(registration.people or ""),
                              registration.note or "", came)  # fmt: skip
            if rows:
                console.print(table)
        if summary.referrals:
            table = Table(title=f"Recommandations ({len(summary.referrals)})")
            for column in ("Entreprise invitée", "Invitée par", "Invitation"):
                table.add_column(column)
            for referral, company, by in summary.referrals:
                table.add_row(
                    company.name, by.name, "envoyée" if referral.invited_at else "en attente"
                )
            console.print(table)


@meetings_app.command("invite")
def meetings_invite(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compter les invitations sans rien envoyer")
    ] = False,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="Inviter aussi cette entreprise (SIRET)")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Retirer cette entreprise (SIRET)")
    ] = None,
) -> None:
    """Invite les entreprises visitées (et recommandées) : un e-mail par contact, avec l'invitation d'agenda."""
    from flows.meeting_invitations import MeetingInvitationsParams, meeting_invitations
    from models.companies import get_company_by_siret
    from synergie.meetings.planning import add_guest, find_meeting, remove_guest

    settings = cli_settings()
    if (add or remove) and not dry_run:
        with _french_errors(), db_session() as session:
            meeting = find_meeting(session=session, meeting_id=meeting_id)
            for siret, verb in [(s, add_guest) for s in add or []] + [
                (s, remove_guest) for s in remove or []
            ]:
                company = get_company_by_siret(session=session, siret=siret.replace(" ", ""))
                verb(session=session, meeting=meeting, company=company, now=datetime.now(UTC))
    with prefect_notice(), _french_errors():
        result = meeting_invitations(
            MeetingInvitationsParams(meeting_id=meeting_id, dry_run=dry_run)
        )
    if dry_run:
        console.print(
            f"Essai à blanc : {result['would_companies']} entreprise(s), {result['would_contacts']} contact(s), "
            f"{result['would_queued']} invitation(s) nouvelle(s) ; rien n'a été écrit ni envoyé."
        )
        return
    console.print(
        f"{result['companies']} entreprise(s) invitée(s), {result['queued']} invitation(s) nouvelle(s), "
        f"{result.get('email_sent', 0)} e-mail(s) envoyé(s)."
    )
    if result.get("removals"):
        console.print(
            f"{result['removals']} annulation(s) d'agenda pour les entreprises retirées de la liste."
        )
    _file_note(settings)


@meetings_app.command("remind")
def meetings_remind(
    meeting_id: Annotated[
        int | None, typer.Argument(help="Numéro de la rencontre (toutes par défaut)")
    ] = None,
) -> None:
    """Envoie les rappels dus : e-mail une semaine avant à qui n'a pas répondu, SMS la veille aux inscrits."""
    from flows.meeting_reminders import meeting_reminders

    settings = cli_settings()
    with prefect_notice():
        result = meeting_reminders(meeting_id)
    console.print(
        f"{result['email_reminders']} rappel(s) par e-mail et {result['sms_reminders']} SMS mis en file ; "
        f"{result['email_sent']} e-mail(s) et {result['sms_sent']} SMS envoyés."
    )
    _file_note(settings)


@meetings_app.command("reschedule")
def meetings_reschedule(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
    at: Annotated[str, typer.Option("--at", help="Nouveau début, ex. 2027-04-20T18:00")],
    until: Annotated[
        str | None, typer.Option("--until", help="Nouvelle fin (même durée par défaut)")
    ] = None,
) -> None:
    """Déplace la rencontre : même UID, SEQUENCE + 1, nouvelle invitation aux inscrits et à la liste d'attente."""
    from models.enums import Channel
    from synergie.meetings.lifecycle import reschedule_meeting
    from synergie.meetings.planning import find_meeting
    from synergie.messaging.rendering import MailTemplates

    settings = cli_settings()
    starts = _when(at, settings, "--at")
    ends = _when(until, settings, "--until") if until else None
    with _french_errors(), db_session() as session:
        meeting = find_meeting(session=session, meeting_id=meeting_id)
        queued = reschedule_meeting(
            session=session, meeting=meeting, starts_at=starts, ends_at=ends, settings=settings,
            templates=MailTemplates(settings.templates_dir), now=datetime.now(UTC),
        )  # fmt: skip
        when = _local(meeting.starts_at, settings)
    sent = send_now(settings, Channel.EMAIL) if queued else 0
    console.print(
        f"Rencontre n° {meeting_id} déplacée au {when} ; {sent} invitation(s) mise(s) à jour envoyée(s)."
    )


@meetings_app.command("cancel")
def meetings_cancel(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
) -> None:
    """Annule la rencontre et envoie l'annulation d'agenda (METHOD:CANCEL) aux invités."""
    from models.enums import Channel
    from synergie.meetings.lifecycle import cancel_meeting
    from synergie.meetings.planning import find_meeting
    from synergie.messaging.rendering import MailTemplates

    settings = cli_settings()
    with _french_errors(), db_session() as session:
        meeting = find_meeting(session=session, meeting_id=meeting_id)
        queued = cancel_meeting(
            session=session, meeting=meeting, settings=settings,
            templates=MailTemplates(settings.templates_dir), now=datetime.now(UTC),
        )  # fmt: skip
    sent = send_now(settings, Channel.EMAIL) if queued else 0
    console.print(f"Rencontre n° {meeting_id} annulée ; {sent} annulation(s) envoyée(s).")


@meetings_app.command("attendance")
def meetings_attendance(
    meeting_id: Annotated[int, typer.Argument(help="Numéro de la rencontre")],
    present: Annotated[
        list[str], typer.Option("--present", help="SIRET d'une entreprise présente (répétable)")
    ],
) -> None:
    """Note la présence : rencontre tenue, présentes « participantes », heures d'équipe au registre."""
    from flows.meeting_attendance import meeting_attendance

    with prefect_notice(), _french_errors():
        result = meeting_attendance(meeting_id, present_sirets=list(present))
    console.print(
        f"Rencontre n° {meeting_id} tenue : {result['present']} entreprise(s) présente(s), "
        f"{result['absent']} absente(s), {result['participants']} devenue(s) participante(s), "
        f"{result['hours']:g} h au registre."
    )


@meetings_app.command("sync")
def meetings_sync(
    meeting_id: Annotated[
        int | None, typer.Argument(help="Numéro de la rencontre (toutes par défaut)")
    ] = None,
) -> None:
    """Fait à la main ce que les événements et le passage programmé déclenchent : confirmations, promotions, invitations recommandées, envois."""
    from flows.meeting_sync import meeting_sync

    settings = cli_settings()
    with prefect_notice(), _french_errors():
        result = meeting_sync(meeting_id=meeting_id)
    console.print(
        f"{result['promoted']} promotion(s) depuis la liste d'attente, {result['confirmations']} confirmation(s), "
        f"{result['referral_invitations']} invitation(s) d'entreprises recommandées ; "
        f"{result.get('email_sent', 0)} e-mail(s) envoyé(s)."
    )
    _file_note(settings)
