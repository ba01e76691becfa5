"""The ``meeting-reminders`` flow: each day, the week-before e-mail and the day-before SMS that are due."""

from __future__ import annotations

from prefect import flow

from models.enums import Channel
from synergie.settings import load_settings
from tasks.meetings import queue_meeting_reminders, send_waiting


@flow(name="meeting_reminders")
def meeting_reminders(meeting_id: int | None = None) -> dict[str, int]:
    """Queue the reminders due (each once, under its own outbox key), then send e-mails and SMS waiting."""
    settings = load_settings()
    queued = queue_meeting_reminders(settings=settings, meeting_id=meeting_id)
    emails = send_waiting(settings=settings, channel=Channel.EMAIL)
    sms = send_waiting(settings=settings, channel=Channel.SMS)
    return {**queued, "email_sent": emails.get("sent", 0), "sms_sent": sms.get("sent", 0)}


if __name__ == "__main__":
    meeting_reminders()
