"""Serve every Synergie deployment from this process: ``python -m deployments.serve``.

The same deployments are described in ``deployments/prefect.yaml`` for a process work pool.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.import_listing import import_listing
from flows.mailing import mailing

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
    ]
    # to_deployment is typed as maybe-async; called from sync code it returns the deployment.
    return [deployment for deployment in deployments if isinstance(deployment, RunnerDeployment)]


if __name__ == "__main__":
    serve(*build_deployments())
