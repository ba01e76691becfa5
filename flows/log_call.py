"""The ``log-call`` flow: wait for staff to type a call's outcome in the Prefect UI, then apply it."""

from __future__ import annotations

from datetime import date

from prefect import flow, pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from models.enums import CallOutcome
from synergie.settings import load_settings
from tasks.calls import apply_call_outcome, find_company_name

DEFAULT_TIMEOUT_SECONDS = 3600


class CallOutcomeInput(RunInput):
    """Le résultat d'un appel, à noter."""

    outcome: CallOutcome = Field(
        title="Résultat",
        description="Résultat : reached (joint), interested (intéressé), no-answer (pas de réponse), "
        "callback (à rappeler), refused (refus), wrong-number (mauvais numéro)",
    )
    on: date | None = Field(
        title="Date du rappel",
        default=None,
        description="Date du rappel (obligatoire pour « callback »), AAAA-MM-JJ",
    )
    notes: str | None = Field(
        title="Notes", default=None, max_length=2000, description="Notes de l'appel"
    )
    by: str = Field(
        title="Votre nom",
        min_length=1,
        max_length=100,
        description="Votre nom, gardé dans l'historique",
    )


@flow(name="log_call")
def log_call_flow(siret: str, timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS) -> dict[str, str]:
    """Check the company exists, pause for the outcome form, then log the call."""
    settings = load_settings()
    siret = siret.replace(" ", "")
    find_company_name(settings=settings, siret=siret)
    answer = pause_flow_run(
        wait_for_input=CallOutcomeInput, timeout=timeout_seconds, poll_interval=1
    )
    return apply_call_outcome(
        settings=settings, siret=siret, outcome=answer.outcome, on=answer.on,
        notes=answer.notes, actor=f"staff:{answer.by.strip()}",
    )  # fmt: skip


if __name__ == "__main__":
    import sys

    log_call_flow(sys.argv[1])
