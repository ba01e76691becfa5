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
from flows.mailing import mailing
from flows.optout_sync import optout_sync
from flows.visit_done import visit_done
from flows.visit_reminders import visit_reminders
from flows.visits import visits
from portal.events import OPTED_OUT_EVENT

TIMEZONE = "Europe/Paris"
WORK_POOL = "synergie"
_DAYS = {"1-5": "les jours ouvrés", "*": "chaque jour", "2": "chaque mardi"}


@dataclass(frozen=True)
class Every:
    """A schedule in Paris time: which days, at what time, and the parameters its runs get."""

    days: str  # a cron day-of-week field, one of _DAYS
    hour: int
    minute: int = 0
    slug: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def cron(self) -> Schedule:
        """Return the Prefect schedule."""
        return Cron(
            f"{self.minute} {self.hour} * * {self.days}",
            timezone=TIMEZONE,
            slug=self.slug,
            parameters=self.parameters,
        )

    def french(self) -> str:
        """Return « les jours ouvrés à 7 h 30 » and the like."""
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


def build_deployments() -> list[RunnerDeployment]:
    """Every deployment of the pipeline, with its schedule and triggers."""
    return [
        _deployment(
            import_listing, name="import-listing", tags=["listing"],
            description="Importer une liste d'entreprises (CSV Synergie ou extrait SIRENE). "
            "Par défaut : essai à blanc de la liste d'exemple.",
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
            "invitations. À la main, le formulaire propose un essai à blanc.",
            every=Every("1-5", 8, slug="visites-jours-ouvres", parameters=FOR_REAL),
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
    ]  # fmt: skip
