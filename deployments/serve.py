"""Serve every Synergie deployment from this process: ``python -m deployments.serve``.

The same deployments are described in ``deployments/prefect.yaml`` for a process work pool.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.import_listing import import_listing


def build_deployments() -> list[RunnerDeployment]:
    """Every deployment of the pipeline, with its schedule and triggers."""
    return [
        import_listing.to_deployment(
            name="import-listing",
            description="Importer une liste d'entreprises (CSV Synergie ou extrait SIRENE). "
            "Par défaut : essai à blanc de la liste d'exemple.",
            tags=["synergie", "listing"],
        ),
    ]


if __name__ == "__main__":
    serve(*build_deployments())
