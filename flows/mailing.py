"""The ``mailing`` flow: one step of a campaign, e-mailed in batches through the outbox."""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture
from pydantic import BaseModel, Field

from models.enums import MessageStatus
from synergie.mailing import BatchAllowance, BatchOutcome
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
    """One mailing step; by default a dry run that only shows what would go out."""

    campaign: str | None = Field(
        default=None, description="Nom de la campagne (vide : la plus récente)"
    )
    template: str = Field(
        default="premier-courrier", min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Modèle de message, qui nomme aussi l'étape",
    )  # fmt: skip
    batch_size: int = Field(
        default=100, ge=1, le=1000, description="Messages par lot (une connexion SMTP par lot)"
    )
    # One batch at a time keeps the promise that a crash re-sends at most one message;
    # N batches in parallel go faster but a crash may then re-send up to N.
    concurrency: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Lots envoyés en parallèle (une connexion chacun) ; un arrêt brutal peut "
        "alors renvoyer jusqu'à ce nombre de messages",
    )
    max_per_run: int = Field(
        default=500, ge=1, le=100_000, description="Messages au plus pendant ce passage"
    )
    rate_per_minute: int | None = Field(
        default=120, ge=1, le=10_000, description="Débit maximal (messages/minute)"
    )
    dry_run: bool = Field(
        default=True,
        description="Essai à blanc : montrer ce qui partirait, ne rien écrire ni envoyer",
    )


@flow(name="mailing")
def mailing(params: MailingParams = MailingParams()) -> dict[str, int]:  # noqa: B008 (the form's default)
    """Select, enqueue, send in batches, and publish the summary of one mailing step."""
    settings = load_settings()
    plan = prepare_mailing(
        settings=settings, campaign=params.campaign, template=params.template, batch_size=params.batch_size,
        concurrency=params.concurrency, max_per_run=params.max_per_run, rate_per_minute=params.rate_per_minute,
        dry_run=params.dry_run,
    )  # fmt: skip
    if plan.dry_run:
        lines = preview_mailing(settings=settings, plan=plan)
        return {"would_send": len(lines)}
    added, waiting = enqueue_mailing(settings=settings, plan=plan)
    expected = max(1, min(plan.max_per_run, waiting))
    progress = ProgressArtifact(
        "envoi", key="mailing-progress", description=f"Envoi « {plan.step} »"
    )
    run = {status.value: 0 for status in MessageStatus}
    allowance = BatchAllowance(
        batch_size=plan.batch_size, concurrency=plan.concurrency, max_per_run=plan.max_per_run
    )
    in_flight: list[tuple[PrefectFuture[BatchOutcome], int]] = []
    while True:
        for limit in allowance.to_start(len(in_flight)):
            in_flight.append(
                (send_mail_batch.submit(settings=settings, plan=plan, limit=limit), limit)
            )
        if not in_flight:
            if allowance.room and wait_for_retries(
                settings=settings, plan=plan, at_most=RETRY_WAIT_IN_RUN
            ):
                allowance.retry()
                continue
            break
        future, limit = in_flight.pop(0)
        outcome = future.result()
        allowance.finished(limit, outcome.claimed)
        for status, count in outcome.statuses.items():
            run[status.value] += count
        progress.update(allowance.claimed, max(allowance.claimed, expected))
    progress.update(allowance.claimed, allowance.claimed)
    totals = publish_mailing_summary(settings=settings, plan=plan, added=added, run=run)
    return {"enqueued": added, **{f"run_{k}": v for k, v in run.items()}, **totals}


if __name__ == "__main__":
    mailing()
