"""The ``synergie callers`` and ``synergie calls`` commands: volunteers who phone, their lists, outcomes."""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from models.enums import CallOutcome
from synergie import french
from synergie.cli.common import (
    CliError,
    check_before_flow,
    cli_settings,
    console,
    db_session,
    prefect_notice,
)

callers_app = typer.Typer(
    help="Appelants : bénévoles ou agents qui téléphonent aux entreprises.", no_args_is_help=True
)
calls_app = typer.Typer(help="Appels : listes du jour et résultats.", no_args_is_help=True)


@callers_app.command("add")
def callers_add(
    name: Annotated[str, typer.Argument(help="Nom de l'appelant")],
    phone: Annotated[str | None, typer.Option(help="Téléphone (reçoit le SMS du jour)")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail (reçoit la liste du jour)")] = None,
    per_day: Annotated[int, typer.Option(min=1, max=200, help="Appels par jour au plus")] = 5,
    days: Annotated[
        str, typer.Option(help="Jours disponibles, 1 = lundi … 7 = dimanche, ex. 1,2,3,4,5")
    ] = "1,2,3,4,5",
) -> None:
    """Ajoute un appelant."""
    from synergie.calls.callers import CallError, add_caller, parse_days

    try:
        with db_session() as session:
            caller = add_caller(
                session=session, name=name, phone=phone, email=email, per_day=per_day,
                days=parse_days(days),
            )  # fmt: skip
            console.print(
                f"Appelant ajouté : {caller.name} (n° {caller.id}), {caller.calls_per_day} appels"
                f" par jour, {_days_fr(caller.days_available)}."
            )
    except CallError as exc:
        raise CliError(str(exc)) from exc


def _days_fr(days: list[int]) -> str:
    return ", ".join(french.weekday(day) for day in sorted(days) if 1 <= day <= 7)


@callers_app.command("list")
def callers_list() -> None:
    """Liste les appelants."""
    from synergie.calls.callers import list_callers

    with db_session() as session:
        rows = list_callers(session=session)
        table = Table(title=f"Appelants ({len(rows)})")
        for column in ("N°", "Nom", "Téléphone", "E-mail", "Appels/jour", "Jours", "Actif"):
            table.add_column(column)
        for caller in rows:
            table.add_row(
                str(caller.id), caller.name, caller.phone or "—", caller.email or "—",
                str(caller.calls_per_day), _days_fr(caller.days_available),
                "oui" if caller.active else "non",
            )  # fmt: skip
        console.print(table)


@calls_app.command("remind")
def calls_remind(
    after_days: Annotated[
        int | None,
        typer.Option(min=0, max=365, help="Entreprises contactées depuis au moins N jours"),
    ] = None,
    day: Annotated[
        str | None, typer.Option("--day", help="Jour des appels, AAAA-MM-JJ (défaut : aujourd'hui)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Montrer la répartition sans rien écrire ni envoyer")
    ] = False,
) -> None:
    """Répartit les appels du jour et envoie à chaque appelant son SMS et sa liste (flow call_reminders)."""
    from flows.call_reminders import CallRemindersParams, call_reminders

    settings = cli_settings()
    if not dry_run:
        check_before_flow(settings, email=True, sms=True)
    params = CallRemindersParams(after_days=after_days, day=_parse_date(day), dry_run=dry_run)
    with prefect_notice():
        result = call_reminders(params)
    if dry_run:
        console.print(
            f"Essai à blanc : {result['calls']} appel(s) pour {result['callers']} appelant(s) ;"
            " rien n'a été écrit ni envoyé."
        )
        return
    table = Table(title="Appels du jour")
    table.add_column("")
    table.add_column("Nombre", justify="right")
    table.add_row("Appelants avec des appels", str(result["callers"]))
    table.add_row("Appels à passer", str(result["calls"]))
    table.add_row("Nouveaux messages en file", str(result["enqueued"]))
    table.add_row("SMS envoyés", str(result["sent_sms"]))
    table.add_row("E-mails envoyés", str(result["sent_email"]))
    console.print(table)
    if settings.email_backend == "file" or settings.sms_backend == "file":
        console.print(f"Messages écrits dans {settings.outbox_dir} (aucun envoi réel).")


def _parse_date(value: str | None) -> date | None:

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"date invalide « {value} » : écrivez-la AAAA-MM-JJ, ex. 2026-12-01"
        ) from None


@calls_app.command("log")
def calls_log(
    siret: Annotated[str, typer.Argument(help="SIRET de l'entreprise appelée")],
    outcome: Annotated[CallOutcome, typer.Option(case_sensitive=False, help="Résultat de l'appel")],
    on: Annotated[
        str | None, typer.Option(help="Date du rappel, AAAA-MM-JJ (obligatoire pour callback)")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Notes de l'appel")] = None,
    by: Annotated[
        str | None, typer.Option(help="Votre nom (par défaut : l'utilisateur système)")
    ] = None,
) -> None:
    """Note le résultat d'un appel ; l'étape de l'entreprise suit."""
    from models import STAGE_LABELS_FR
    from models.companies import get_company_by_siret
    from synergie.calls.callers import CallError
    from synergie.calls.lists import OUTCOME_LABELS_FR
    from synergie.calls.outcomes import log_call

    settings = cli_settings()
    when = _parse_date(on)
    try:
        with db_session() as session:
            company = get_company_by_siret(session=session, siret=siret.replace(" ", ""))
            logged = log_call(
                session=session, company=company, outcome=outcome, on=when, notes=notes,
                actor=f"staff:{by or getpass.getuser()}", now=datetime.now(UTC),
                call_minutes=settings.call_minutes, tz=settings.tz,
            )  # fmt: skip
            message = (
                f"{company.name} : {OUTCOME_LABELS_FR[outcome]} — étape"
                f" [bold]{STAGE_LABELS_FR[logged.stage]}[/]"
            )
            if logged.next_task is not None:
                message += f" ; prochain appel le {french.short_date(logged.next_task.due_on)}"
            console.print(message)
    except CallError as exc:
        raise CliError(str(exc)) from exc
