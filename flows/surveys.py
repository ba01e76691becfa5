"""The ``surveys`` flow: after each held meeting, its follow-up survey: invitations, one reminder, closing, results."""

from __future__ import annotations

from prefect import flow

from models.enums import Channel
from synergie.settings import load_settings
from tasks.meetings import send_waiting
from tasks.surveys import publish_survey_results, run_surveys


@flow(name="surveys")
def surveys(meeting_id: int | None = None) -> dict[str, int]:
    """Queue the invitations and reminders due (each once, under its outbox key), send them, publish the results."""
    settings = load_settings()
    runs = run_surveys(settings=settings, meeting_id=meeting_id)
    sent = send_waiting(settings=settings, channel=Channel.EMAIL)
    surveyed = [int(run["meeting_id"]) for run in runs if run["survey_id"] is not None]
    publish_survey_results(settings=settings, meeting_ids=surveyed)
    return {
        "meetings": len(runs),
        "opened": sum(1 for run in runs if run["opened"]),
        "invitations": sum(int(run["invitations"]) for run in runs),
        "reminders": sum(int(run["reminders"]) for run in runs),
        "closed": sum(1 for run in runs if run["closed"]),
        "email_sent": sent.get("sent", 0),
    }


if __name__ == "__main__":
    surveys()
