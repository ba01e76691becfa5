"""Tasks of the inventory flows: tell the officer about submitted questionnaires, accept an inventory."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from models.companies import get_company_by_siret
from models.db import require_schema, session_scope
from synergie.inventory.questionnaire import review_submissions
from synergie.inventory.store import accept_inventory
from synergie.settings import Settings
from tasks.mailing import templates_for
from tasks.runtime import current_actor, engine_for


@task(name="review-submissions", cache_policy=NO_CACHE)
def review_submitted_inventories(
    *, settings: Settings, company_id: int | None
) -> list[dict[str, str]]:
    """Queue the officer's summary of each questionnaire not yet reviewed and book the review time."""
    engine = engine_for(settings.db_url)
    require_schema(engine)
    with session_scope(engine) as session:
        reviewed = review_submissions(
            session=session, settings=settings, templates=templates_for(settings),
            now=datetime.now(UTC), actor=current_actor(), company_id=company_id,
        )  # fmt: skip
    rows = [{"entreprise": r.company, "flux": str(r.rows), "heures": f"{r.hours:g}",
             "courriel": "en file" if r.queued else "déjà en file"} for r in reviewed]  # fmt: skip
    create_table_artifact(
        key="inventory-review",
        table=rows or [{"entreprise": "aucune", "flux": "", "heures": "", "courriel": ""}],
        description=f"{len(rows)} questionnaire(s) des flux transmis à la chargée de mission",
    )
    get_run_logger().info("%d questionnaire(s) reviewed", len(rows))
    return rows


@task(name="accept-inventory", cache_policy=NO_CACHE)
def accept_company_inventory(*, settings: Settings, siret: str, actor: str) -> dict[str, str]:
    """Move the company to « flux collectés » once staff checked its flows."""
    with session_scope(engine_for(settings.db_url)) as session:
        company = get_company_by_siret(session=session, siret=siret)
        accept_inventory(session=session, company=company, actor=actor, now=datetime.now(UTC))
        return {"siret": siret, "company": company.name, "stage": company.stage.value}
