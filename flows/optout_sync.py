"""The ``optout-sync`` flow: apply opt-outs to what still waits in the outbox.

Started by the portal's ``synergie.contact.opted-out`` event for one company, and once a day
for all of them, which catches up any event lost on the way. Idempotent: a second run finds
nothing left to cancel.
"""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from synergie.settings import load_settings
from tasks.outbox import cancel_opted_out_messages


class OptOutSyncParams(BaseModel):
    """L'entreprise dont appliquer les désinscriptions. Par défaut, toutes."""

    company_id: int | None = Field(
        default=None, ge=1, title="Entreprise", description="Numéro de l'entreprise (vide : toutes)"
    )


@flow(name="optout_sync")
def optout_sync(params: OptOutSyncParams = OptOutSyncParams()) -> dict[str, int]:  # noqa: B008
    """Cancel the waiting messages of contacts who opted out and of companies that left."""
    return {
        "cancelled": cancel_opted_out_messages(
            settings=load_settings(), company_id=params.company_id
        )
    }


if __name__ == "__main__":
    optout_sync()
