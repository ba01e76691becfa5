"""The ``call-reminders`` flow: share the day's calls among callers and send each an SMS and an e-mail."""

from __future__ import annotations

from datetime import UTC, date, datetime

from prefect import flow
from pydantic import BaseModel, Field

from models.enums import Channel
from synergie.settings import load_settings
from tasks.calls import assign_todays_calls, enqueue_caller_digests
from tasks.outbox import send_prepared_messages


class CallRemindersParams(BaseModel):
    """Les listes d'appels d'un jour. À la main, un essai à blanc par défaut ; le planning envoie pour de vrai."""

    after_days: int | None = Field(
        title="Délai après le courrier (jours)", default=None, ge=0, le=365,
        description="Appeler les entreprises contactées depuis au moins N jours (vide : réglage, 7)",
    )  # fmt: skip
    day: date | None = Field(
        title="Jour des appels",
        default=None,
        description="Jour des appels (vide : aujourd'hui, heure de Paris)",
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : montrer la répartition, ne rien écrire ni envoyer",
    )


@flow(name="call_reminders")
def call_reminders(params: CallRemindersParams = CallRemindersParams()) -> dict[str, int]:  # noqa: B008 (the form's default)
    """Assign the day's calls, enqueue each caller's digest once, send them, and return the counts."""
    settings = load_settings()
    day = params.day or datetime.now(UTC).astimezone(settings.tz).date()
    after_days = settings.call_after_days if params.after_days is None else params.after_days
    counts = assign_todays_calls(
        settings=settings, day=day, after_days=after_days, dry_run=params.dry_run
    )
    result = {"callers": len(counts), "calls": sum(c.calls for c in counts)}
    if params.dry_run:
        return result
    enqueued = enqueue_caller_digests(settings=settings, day=day)
    sms = send_prepared_messages(settings=settings, channel=Channel.SMS)
    mail = send_prepared_messages(settings=settings, channel=Channel.EMAIL)
    return {**result, "enqueued": enqueued, "sent_sms": sms["sent"], "sent_email": mail["sent"]}


if __name__ == "__main__":
    call_reminders()
