"""Tasks of the ``surveys`` flow: thin wrappers over ``synergie.surveys``, one transaction per meeting."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlmodel import Session

from synergie.messaging.rendering import MailTemplates
from synergie.settings import Settings
from synergie.surveys.outreach import meetings_to_survey, run_meeting_survey
from synergie.surveys.results import results_markdown, survey_results
from tasks.meetings import writing
from tasks.runtime import engine_for


def results_artifact_key(meeting_id: int) -> str:
    """The key of a meeting's results artifact (lowercase and dashes, as Prefect wants)."""
    return f"questionnaire-rencontre-{int(meeting_id)}"


@task(name="run-surveys", cache_policy=NO_CACHE)
def run_surveys(*, settings: Settings, meeting_id: int | None) -> list[dict[str, Any]]:
    """Open, invite, remind and close: one meeting (by hand, on its event) or every held meeting due."""
    now = datetime.now(UTC)
    templates = MailTemplates(settings.templates_dir)
    if meeting_id is None:
        with Session(engine_for(settings.db_url)) as session:
            meeting_ids = meetings_to_survey(
                session=session, now=now, close_days=settings.survey_close_days
            )
    else:
        meeting_ids = [meeting_id]
    runs = []
    for number in meeting_ids:
        with writing(settings) as session:
            run = run_meeting_survey(
                session=session, settings=settings, templates=templates, meeting_id=number, now=now
            )
        runs.append(asdict(run))
    get_run_logger().info("surveys: %s", runs)
    return runs


@task(name="publish-survey-results", cache_policy=NO_CACHE)
def publish_survey_results(*, settings: Settings, meeting_ids: list[int]) -> list[str]:
    """Publish each meeting's survey results as a markdown artifact; return the artifacts' keys."""
    now = datetime.now(UTC)
    keys = []
    with Session(engine_for(settings.db_url)) as session:
        for meeting_id in meeting_ids:
            results = survey_results(session=session, meeting_id=meeting_id, now=now)
            key = results_artifact_key(meeting_id)
            create_markdown_artifact(
                key=key,
                markdown=results_markdown(results),
                description=f"Questionnaire de suivi de la rencontre n° {meeting_id} : "
                f"{results.responses} réponse(s)",
            )
            keys.append(key)
    return keys
