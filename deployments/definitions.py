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
from flows.log_call import log_call_flow
from flows.mailbox import mailbox
from flows.mailing import mailing
from flows.visit_done import visit_done
from flows.visit_reminders import visit_reminders
from flows.visits import visits
from portal.events import CALL_LOGGED_EVENT, LISTING_UPLOADED_EVENT

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

    def __post_init__(self) -> None:
        if (self.hour is None) == (self.minutes is None):
            raise ValueError("Every needs a fixed hour or a step in minutes, not both")
        if self.minutes is not None and (self.minutes < 1 or 60 % self.minutes):
            raise ValueError(f"a step of {self.minutes} minutes does not divide the hour")

    def cron(self) -> Schedule:
        """Return the Prefect schedule."""
        at = f"*/{self.minutes} *" if self.minutes is not None else f"{self.minute} {self.hour}"
        return Cron(
            f"{at} * * {self.days}",
            timezone=TIMEZONE,
            slug=self.slug,
            parameters=self.parameters,
        )

    def french(self) -> str:
        """Return « les jours ouvrés à 7 h 30 », « chaque jour, toutes les 15 minutes » and the like."""
        if self.minutes is not None:
            return f"{_DAYS[self.days]}, toutes les {self.minutes} minutes"
        at = f"{self.hour} h" + (f" {self.minute:02d}" if self.minute else "")
        return f"{_DAYS[self.days]} à {at}"


# Scheduled runs act for real; the form staff open by hand stays a dry run.
FOR_REAL = {"params": {"dry_run": False}}


def _deployment(
    flow: Any,
    *,
    name: str,
    description: str,
    tags: list[str],
    every: Every | None = None,
    **options: Any,
) -> RunnerDeployment:
    if every is not None:
        description += f" Automatique : {every.french()} (heure de Paris)."
        options["schedules"] = [every.cron()]
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
    ]  # fmt: skip
