"""Serve every Synergie deployment from this process: ``python -m deployments.serve``.

The same deployments are described in ``deployments/prefect.yaml`` for a process work pool.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.call_reminders import call_reminders
from flows.import_listing import import_listing
from flows.log_call import log_call_flow
from flows.mailing import mailing
from flows.visit_done import visit_done
from flows.visit_reminders import visit_reminders
from flows.visits import visits

TIMEZONE = "Europe/Paris"
# The weekly mailing sends for real; the form staff open by hand stays a dry run.
WEEKLY_MAILING = Cron(
    "0 9 * * 2",
    timezone=TIMEZONE,
    slug="mailing-hebdomadaire",
    parameters={"params": {"dry_run": False}},
)


def build_deployments() -> list[RunnerDeployment]:
    """Every deployment of the pipeline, with its schedule and triggers."""
    deployments = [
        import_listing.to_deployment(
            name="import-listing",
            description="Importer une liste d'entreprises (CSV Synergie ou extrait SIRENE). "
            "Par défaut : essai à blanc de la liste d'exemple.",
            tags=["synergie", "listing"],
        ),
        mailing.to_deployment(
            name="mailing",
            description="Envoyer une étape de campagne par courriel, par lots, via la file d'envoi. "
            "Chaque mardi à 9 h (heure de Paris) ; à la main, le formulaire propose un essai à blanc.",
            tags=["synergie", "mailing"],
            schedules=[WEEKLY_MAILING],
        ),
        call_reminders.to_deployment(
            name="call-reminders",
            description="Répartir les appels du jour entre les bénévoles et leur envoyer leur liste "
            "(SMS + courriel). Jours ouvrés à 7 h 30 (Paris) ; à la main, essai à blanc par défaut.",
            tags=["synergie", "calls"],
            schedules=[
                Cron(
                    "30 7 * * 1-5",
                    timezone=TIMEZONE,
                    slug="appels-jours-ouvres",
                    parameters={"params": {"dry_run": False}},
                )
            ],
        ),
        log_call_flow.to_deployment(
            name="log-call",
            description="Noter le résultat d'un appel sans terminal : indiquez le SIRET, "
            "puis remplissez le formulaire qui s'affiche.",
            tags=["synergie", "calls"],
        ),
        visits.to_deployment(
            name="visits",
            description="Réserver les visites des entreprises intéressées et envoyer les invitations. "
            "Jours ouvrés à 8 h (Paris) ; à la main, le formulaire propose un essai à blanc.",
            tags=["synergie", "visits"],
            schedules=[
                Cron(
                    "0 7 * * 1-5",
                    timezone=TIMEZONE,
                    slug="visites-jours-ouvres",
                    parameters={"params": {"dry_run": False}},
                )
            ],
            concurrency_limit=1,  # the diary is read then written: one booking run at a time
        ),
        visit_done.to_deployment(
            name="visit-done",
            description="Clore une visite faite (compte rendu) : étape « visitée » et 2 h au registre.",
            tags=["synergie", "visits"],
        ),
        visit_reminders.to_deployment(
            name="visit-reminders",
            description="SMS de rappel la veille de chaque visite confirmée. Chaque jour à 9 h (Paris).",
            tags=["synergie", "visits"],
            schedules=[Cron("0 9 * * *", timezone=TIMEZONE, slug="rappels-visites")],
        ),
    ]
    # to_deployment is typed as maybe-async; called from sync code it returns the deployment.
    return [deployment for deployment in deployments if isinstance(deployment, RunnerDeployment)]


if __name__ == "__main__":
    serve(*build_deployments())
