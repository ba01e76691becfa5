"""The ``visit-reminders`` flow: each day, an SMS to the contact of every visit taking place tomorrow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import flow
from pydantic import BaseModel, Field

from models.enums import Channel
from synergie.settings import load_settings
from tasks.outbox import send_prepared_messages
from tasks.visits import queue_visit_reminders


class VisitRemindersParams(BaseModel):
    """Le jour des visites à rappeler. Par défaut, demain (heure de Paris)."""

    day: date | None = Field(
        title="Jour des visites", default=None, description="Jour des visites (vide : demain)"
    )


@flow(name="visit_reminders")
def visit_reminders(params: VisitRemindersParams = VisitRemindersParams()) -> dict[str, int]:  # noqa: B008
    """Queue the day-before SMS reminders and send the prepared SMS waiting in the outbox."""
    settings = load_settings()
    today = datetime.now(UTC).astimezone(settings.tz).date()
    day = params.day or today + timedelta(days=1)
    added = queue_visit_reminders(settings=settings, day=day)
    sent = send_prepared_messages(settings=settings, channel=Channel.SMS)
    return {"enqueued": added, **{f"sms_{k}": v for k, v in sent.items()}}


if __name__ == "__main__":
    visit_reminders()
