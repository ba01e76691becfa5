"""Every Synergie deployment, written once: ``serve`` serves them and ``prefect.yaml`` is generated from them.

A schedule is declared with its French wording (``Every``), so the form's description can never
promise another hour than the cron runs at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Schedule

from flows.call_reminders import call_reminders
from flows.import_listing import import_listing
from flows.inventory_accept import inventory_accept
from flows.inventory_review import inventory_review
from flows.log_call import log_call_flow
from flows.mailbox import mailbox
from flows.mailing import mailing
from flows.meeting_attendance import meeting_attendance
from flows.meeting_invitations import meeting_invitations
from flows.meeting_reminders import meeting_reminders
from flows.meeting_sync import meeting_sync
from flows.optout_sync import optout_sync
from flows.report import report
from flows.survey_results import survey_results
from flows.surveys import surveys
from flows.visit_done import visit_done
from flows.visit_reminders import visit_reminders
from flows.visits import visits
from portal.events import (
    CALL_LOGGED_EVENT,
    FLOWS_SUBMITTED_EVENT,
    INVITATION_ANSWERED_EVENT,
    LISTING_UPLOADED_EVENT,
    MEETING_HELD_EVENT,
    OPTED_OUT_EVENT,
    REFERRAL_CREATED_EVENT,
    SURVEY_SUBMITTED_EVENT,
)

TIMEZONE = "Europe/Paris"
WORK_POOL = "synergie"
_DAYS = {"1-5": "les jours ouvrés", "*": "chaque jour", "2": "chaque mardi"}


@dataclass(frozen=True)
class Every:
    """A schedule in Paris time: which days, at what time (or every N minutes), and its runs' parameters."""

    days: str  # a cron day-of-week field, one of _DAYS
    hour: int | None = None  # None with ``minutes``: all day long
    minute: int = 0
    slug: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    minutes: int | None = None  # every N minutes (N divides 60), instead of a fixed time
    monthday: int | None = None  # a day of the month (1–28) instead of days of the week

    def __post_init__(self) -> None:
        if (self.hour is None) == (self.minutes is None):
            raise ValueError("Every needs a fixed hour or a step in minutes, not both")
        if self.monthday is not None and not 1 <= self.monthday <= 28:
            raise ValueError("a monthly run picks a day from 1 to 28 (every month has one)")
        if self.minutes is not None and (self.minutes < 1 or 60 % self.minutes):
            raise ValueError(f"a step of {self.minutes} minutes does not divide the hour")

    def cron(self) -> Schedule:
        """Return the Prefect schedule."""
        at = f"*/{self.minutes} *" if self.minutes is not None else f"{self.minute} {self.hour}"
        return Cron(
            f"{at} {self.monthday or '*'} * {self.days}",
            timezone=TIMEZONE,
            slug=self.slug,
            parameters=self.parameters,
        )

    def french(self) -> str:
        """Return « les jours ouvrés à 7 h 30 », « chaque jour, toutes les 15 minutes » and the like."""
        if self.minutes is not None:
            return f"{_DAYS[self.days]}, toutes les {self.minutes} minutes"
        at = f"{self.hour} h" + (f" {self.minute:02d}" if self.minute else "")
        if self.monthday is not None:
            day = "1er" if self.monthday == 1 else str(self.monthday)
            return f"le {day} de chaque mois à {at}"
        return f"{_DAYS[self.days]} à {at}"


# Scheduled runs act for real; the form staff open by hand stays a dry run.
FOR_REAL = {"params": {"dry_run": False}}


def _deployment(
    flow: Any,
    *,
    name: str,
    description: str,
    tags: list[str],
    every: Every | list[Every] | None = None,
    **options: Any,
) -> RunnerDeployment:
    schedules = [every] if isinstance(every, Every) else (every or [])
    if schedules:
        hours = ", ".join(f"{item.french()} (heure de Paris)" for item in schedules)
        description += f" Automatique : {hours}."
        options["schedules"] = [item.cron() for item in schedules]
    deployment = flow.to_deployment(
        name=name, description=description, tags=["synergie", *tags], **options
    )
    # to_deployment is typed as maybe-async; called from sync code it returns the deployment.
    assert isinstance(deployment, RunnerDeployment)
    return deployment


# A volunteer notes "interested" on the portal: propose that company's visit at once (the
# weekday schedule still books whatever no event started).
INTERESTED_TRIGGER = DeploymentEventTrigger(
    name="appel : entreprise intéressée",
    expect={CALL_LOGGED_EVENT},
    match={"prefect.resource.id": "synergie.company.*", "synergie.outcome": "interested"},
    parameters={"params": {"company_siret": "{{ event.payload.company_siret }}", "dry_run": False}},
)
# Staff upload a listing on the portal: import the file it kept, with the filters chosen.
UPLOAD_TRIGGER = DeploymentEventTrigger(
    name="liste déposée sur le portail",
    expect={LISTING_UPLOADED_EVENT},
    match={"prefect.resource.id": "synergie.listing.*"},
    parameters={
        "params": {
            "path": "{{ event.payload.path }}",
            "communes": "{{ event.payload.communes }}",
            "naf_prefixes": "{{ event.payload.naf_prefixes }}",
            "min_staff_band": "{{ event.payload.min_staff_band }}",
            "include_closed": "{{ event.payload.include_closed }}",
            "dry_run": "{{ event.payload.dry_run }}",
        }
    },
)


def build_deployments() -> list[RunnerDeployment]:
    """Every deployment of the pipeline, with its schedule and triggers."""
    return [
        _deployment(
            import_listing, name="import-listing", tags=["listing"],
            description="Importer une liste d'entreprises (CSV Synergie, extrait SIRENE ou classeur "
            ".xlsx). Par défaut : essai à blanc de la liste d'exemple. Lancé aussi par chaque liste "
            "déposée sur le portail (page « Importer une liste » de l'équipe).",
            triggers=[UPLOAD_TRIGGER],
        ),
        _deployment(
            mailing, name="mailing", tags=["mailing"],
            description="Envoyer une étape de campagne par courriel, par lots, via la file d'envoi. "
            "À la main, le formulaire propose un essai à blanc.",
            every=Every("2", 9, slug="mailing-hebdomadaire", parameters=FOR_REAL),
        ),
        _deployment(
            call_reminders, name="call-reminders", tags=["calls"],
            description="Répartir les appels du jour entre les bénévoles et leur envoyer leur liste "
            "(SMS + courriel). À la main, essai à blanc par défaut.",
            every=Every("1-5", 7, 30, slug="appels-jours-ouvres", parameters=FOR_REAL),
        ),
        _deployment(
            log_call_flow, name="log-call", tags=["calls"],
            description="Noter le résultat d'un appel sans terminal : indiquez le SIRET, "
            "puis remplissez le formulaire qui s'affiche.",
        ),
        _deployment(
            visits, name="visits", tags=["visits"],
            description="Réserver les visites des entreprises intéressées et envoyer les "
            "invitations. À la main, le formulaire propose un essai à blanc. Lancé aussi pour une "
            "entreprise dès qu'un appel noté sur le portail la dit intéressée.",
            every=Every("1-5", 8, slug="visites-jours-ouvres", parameters=FOR_REAL),
            triggers=[INTERESTED_TRIGGER],
            concurrency_limit=1,  # the diary is read then written: one booking run at a time
        ),
        _deployment(
            visit_done, name="visit-done", tags=["visits"],
            description="Clore une visite faite (compte rendu) : étape « visitée » et 2 h au registre.",
        ),
        _deployment(
            visit_reminders, name="visit-reminders", tags=["visits"],
            description="SMS de rappel la veille de chaque visite confirmée.",
            every=Every("*", 9, slug="rappels-visites"),
        ),
        _deployment(
            mailbox, name="mailbox", tags=["mailbox"],
            description="Lire la boîte qui reçoit les retours (avis de non-remise, désinscriptions "
            "par courriel, réponses d'agenda) et ranger chaque courriel dans le dossier qui dit "
            "ce qu'il est devenu. À la main, le formulaire propose un essai à blanc.",
            every=Every("*", minutes=15, slug="boite-aux-lettres", parameters=FOR_REAL),
            concurrency_limit=1,  # one pass at a time (the journal would cope; no need to race)
        ),
        _deployment(
            meeting_invitations, name="meeting-invitations", tags=["meetings"],
            description="Inviter à une rencontre trimestrielle les entreprises visitées (et celles "
            "qu'on leur a recommandées), chacune avec son invitation d'agenda. À la main, le "
            "formulaire propose un essai à blanc.",
        ),
        _deployment(
            meeting_sync, name="meeting-sync", tags=["meetings"],
            description="Suites des réponses aux rencontres : confirmations, promotions depuis la "
            "liste d'attente, invitations des entreprises recommandées. Démarré par chaque réponse "
            "ou recommandation (événements du portail) ; le passage programmé rattrape ce qu'aucun "
            "événement n'a déclenché.",
            every=[Every("*", 8, slug="rencontres-suivi-matin"), Every("*", 13, slug="rencontres-suivi-midi"),
                   Every("*", 18, slug="rencontres-suivi-soir")],
            triggers=[MEETING_TRIGGERS[name] for name in sorted(MEETING_TRIGGERS)],
        ),
        _deployment(
            meeting_reminders, name="meeting-reminders", tags=["meetings"],
            description="Rappels des rencontres : un e-mail une semaine avant à qui n'a pas répondu, "
            "un SMS la veille aux inscrits.",
            every=Every("*", 10, slug="rappels-rencontres"),
        ),
        _deployment(
            meeting_attendance, name="meeting-attendance", tags=["meetings"],
            description="Noter la présence après une rencontre : indiquez son numéro, puis cochez les "
            "entreprises présentes dans le formulaire qui s'affiche.",
        ),
        _deployment(
            surveys, name="surveys", tags=["surveys"],
            description="Questionnaires de suivi des rencontres tenues : une invitation par contact des "
            "entreprises présentes, un rappel à qui n'a pas répondu, clôture, résultats en artefact. "
            f"Démarré quand la présence est notée (événement {MEETING_HELD_EVENT}) ; le passage "
            "programmé fait les rappels et les clôtures, et rattrape ce qu'aucun événement n'a "
            "démarré, jamais deux fois.",
            every=Every("*", 9, 30, slug="questionnaires-suivi"),
            triggers=[DeploymentEventTrigger(
                name=f"surveys on {MEETING_HELD_EVENT}", expect={MEETING_HELD_EVENT},
                match={"prefect.resource.id": "synergie.meeting.*"},
                parameters={"meeting_id": "{{ event.payload.meeting_id }}"},
            )],
        ),
        _deployment(
            survey_results, name="survey-results", tags=["surveys"],
            description="Résultats du questionnaire de suivi d'une rencontre, publiés à nouveau en "
            f"artefact à chaque réponse reçue par le portail (événement {SURVEY_SUBMITTED_EVENT}) ; "
            "rien n'est envoyé. Le passage quotidien de « surveys » les publie aussi.",
            triggers=[DeploymentEventTrigger(
                name=f"survey-results on {SURVEY_SUBMITTED_EVENT}", expect={SURVEY_SUBMITTED_EVENT},
                match={"prefect.resource.id": "synergie.survey.*"},
                parameters={"meeting_id": "{{ event.payload.meeting_id }}"},
            )],
        ),
        _deployment(
            optout_sync, name="optout-sync", tags=["messaging"],
            description="Appliquer les désinscriptions : annuler les messages encore en attente des "
            "contacts désinscrits. Lancé à chaque désinscription reçue par le portail.",
            every=Every("*", 6, slug="desinscriptions-quotidiennes"),
            triggers=[DeploymentEventTrigger(
                name="désinscription reçue", expect={OPTED_OUT_EVENT},
                match={"prefect.resource.id": "synergie.company.*"},
                parameters={"params": {"company_id": "{{ event.payload.company_id }}"}},
            )],
        ),
        _deployment(
            inventory_review, name="inventory-review", tags=["inventory"],
            description="Un questionnaire des flux est arrivé : résumé par courriel à la chargée de "
            "mission et temps d'analyse noté au registre. Démarré par le portail (événement "
            f"{FLOWS_SUBMITTED_EVENT}) ; le passage programmé rattrape ce qu'aucun événement n'a "
            "démarré, jamais deux fois.",
            every=Every("*", minutes=30, slug="inventaire-rattrapage"),
            triggers=[_flows_submitted_trigger()],
        ),
        _deployment(
            inventory_accept, name="inventory-accept", tags=["inventory"],
            description="Valider l'inventaire des flux d'une entreprise visitée, une fois vérifié : "
            "étape « flux collectés ».",
        ),
        _deployment(
            report, name="report", tags=["report"],
            description="Bilan de la démarche : entonnoir comparé au cas de référence, heures de "
            "l'équipe, synergies, tonnes réutilisées, km et CO2e évités ; fichier HTML dans "
            "var/reports/ et artefacts Prefect.",
            every=Every("*", 7, slug="bilan-mensuel", monthday=1),
        ),
    ]  # fmt: skip


def _meeting_trigger(event: str) -> DeploymentEventTrigger:
    """Start ``meeting-sync`` on a portal event, with the event's fields as the run's parameters."""
    return DeploymentEventTrigger(
        name=f"meeting-sync on {event}",
        expect={event},
        match={"prefect.resource.id": "synergie.meeting.*"},
        parameters={
            "meeting_id": "{{ event.payload.meeting_id }}",
            "company_id": "{{ event.payload.company_id }}",
            "contact_public_id": "{{ event.payload.contact_public_id }}",
        },
    )


# Written here, in the one place that defines deployments; the portal emits these events.
MEETING_TRIGGERS = {
    event: _meeting_trigger(event) for event in (INVITATION_ANSWERED_EVENT, REFERRAL_CREATED_EVENT)
}


def _flows_submitted_trigger() -> DeploymentEventTrigger:
    """Start ``inventory-review`` for the company whose questionnaire the portal just stored."""
    return DeploymentEventTrigger(
        name=f"inventory-review on {FLOWS_SUBMITTED_EVENT}",
        expect={FLOWS_SUBMITTED_EVENT},
        match={"prefect.resource.id": "synergie.company.*"},
        parameters={"company_id": "{{ event.payload.company_id }}"},
    )
