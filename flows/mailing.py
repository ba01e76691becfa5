"""The ``mailing`` flow: one step of a campaign, e-mailed in batches through the outbox.

Async, so that a run does not end waiting on Prefect's heartbeat thread (a synchronous
flow loses up to a second there); from synchronous code: ``asyncio.run(mailing(...))``.
"""

from __future__ import annotations

import asyncio
import gc

from prefect import flow
from pydantic import BaseModel, Field

from models.enums import MessageStatus
from synergie.mailing.campaigns import BatchAllowance, BatchOutcome
from synergie.settings import load_settings
from tasks.mailing import (
    enqueue_mailing,
    prepare_mailing,
    preview_mailing,
    publish_mailing_summary,
    send_mail_batch,
    wait_for_retries,
)
from tasks.runtime import ProgressArtifact

# A retry due within this many seconds is waited for in the same run; later ones are
# left to the next scheduled run.
RETRY_WAIT_IN_RUN = 90.0


class MailingParams(BaseModel):
    """Une étape de campagne par courriel. Par défaut, un essai à blanc qui montre ce qui partirait."""

    # The docstring above is the form's description in the Prefect UI: it speaks to staff, in French.

    # A plain text that may stay empty: a `str | None` field shows staff a type switch.
    campaign: str = Field(
        title="Campagne",
        default="",
        max_length=200,
        description="Nom de la campagne (vide : la plus récente)",
    )
    template: str = Field(
        title="Modèle", default="premier-courrier", min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Modèle de message, qui nomme aussi l'étape",
    )  # fmt: skip
    # A Prefect task run costs ~25 ms of CPU between client and API: a batch should carry
    # far more work than that. Under a rate limit, batches shrink to ~30 s each.
    batch_size: int = Field(
        title="Taille des lots", default=500, ge=1, le=1000,
        description="Messages par lot (une connexion SMTP par lot ; moins si le débit est limité, "
        "pour qu'un lot dure au plus 30 s environ)",
    )  # fmt: skip
    # One batch at a time keeps the promise that a crash re-sends at most one message;
    # N batches in parallel go faster but a crash may then re-send up to N.
    concurrency: int = Field(
        title="Lots en parallèle",
        default=1,
        ge=1,
        le=8,
        description="Lots envoyés en parallèle (une connexion chacun) ; un arrêt brutal peut "
        "alors renvoyer jusqu'à ce nombre de messages",
    )
    max_per_run: int = Field(
        title="Messages au plus",
        default=500,
        ge=1,
        le=100_000,
        description="Messages au plus pendant ce passage",
    )
    rate_per_minute: int | None = Field(
        title="Débit par minute",
        default=120,
        ge=1,
        le=10_000,
        description="Débit maximal (messages/minute)",
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : montrer ce qui partirait, ne rien écrire ni envoyer",
    )


@flow(name="mailing")
async def mailing(params: MailingParams = MailingParams()) -> dict[str, int]:  # noqa: B008 (the form's default)
    """Select, enqueue, send in batches, and publish the summary of one mailing step."""
    # What is alive now (imports, Prefect's machinery) lives as long as the run: frozen, it is
    # no longer rescanned by each full pass of the cycle collector (~0.1 s each here).
    gc.freeze()
    settings = load_settings()
    plan = await prepare_mailing(
        settings=settings, campaign=params.campaign.strip() or None, template=params.template, batch_size=params.batch_size,
        concurrency=params.concurrency, max_per_run=params.max_per_run, rate_per_minute=params.rate_per_minute,
        dry_run=params.dry_run,
    )  # fmt: skip
    if plan.dry_run:
        lines, outside = await preview_mailing(settings=settings, plan=plan)
        return {
            "would_send": len(lines),
            "outside_no_code": outside.no_code,
            "outside_other_commune": outside.other_commune,
        }
    added, waiting = await enqueue_mailing(settings=settings, plan=plan)
    expected = max(1, min(plan.max_per_run, waiting))
    progress = ProgressArtifact(
        "envoi", key="mailing-progress", description=f"Envoi « {plan.step} »"
    )
    run = {status.value: 0 for status in MessageStatus}
    allowance = BatchAllowance(
        batch_size=plan.batch_size, concurrency=plan.concurrency, max_per_run=plan.max_per_run
    )
    in_flight: list[tuple[asyncio.Task[BatchOutcome], int]] = []
    try:
        while True:
            for limit in allowance.to_start(len(in_flight)):
                batch = send_mail_batch(settings=settings, plan=plan, limit=limit)
                in_flight.append((asyncio.ensure_future(batch), limit))
            if not in_flight:
                if allowance.room and await wait_for_retries(
                    settings=settings, plan=plan, at_most=RETRY_WAIT_IN_RUN
                ):
                    allowance.retry()
                    continue
                break
            # Reported while the next batch is already sending, not in between.
            await progress.aupdate(allowance.claimed, max(allowance.claimed, expected))
            future, limit = in_flight.pop(0)
            outcome = await future
            allowance.finished(limit, outcome.claimed)
            for status, count in outcome.statuses.items():
                run[status.value] += count
    finally:
        # A failed batch ends the run: let the others finish their message and record it.
        if in_flight:
            await asyncio.wait([future for future, _ in in_flight])
    await progress.aupdate(allowance.claimed, allowance.claimed)
    totals = await publish_mailing_summary(settings=settings, plan=plan, added=added, run=run)
    return {"enqueued": added, **{f"run_{k}": v for k, v in run.items()}, **totals}


if __name__ == "__main__":
    asyncio.run(mailing())
