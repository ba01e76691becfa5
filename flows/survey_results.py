"""The ``survey-results`` flow: a meeting's survey results, published again as each answer comes in."""

from __future__ import annotations

from prefect import flow

from synergie.settings import load_settings
from tasks.surveys import publish_survey_results


@flow(name="survey-results")
def survey_results(meeting_id: int) -> dict[str, object]:
    """Publish the meeting's survey results artifact from the answers stored now (nothing is sent)."""
    settings = load_settings()
    [key] = publish_survey_results(settings=settings, meeting_ids=[meeting_id])
    return {"meeting_id": meeting_id, "artifact": key}


if __name__ == "__main__":
    import sys

    survey_results(int(sys.argv[1]))
