"""The surveys flow under a real (temporary) Prefect API: invitations once, one reminder, the results artifact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from sqlmodel import Session, select

from flows.surveys import surveys
from models import MessageStatus, Survey, SurveyRecipient
from models.db import make_engine, write_transaction
from synergie.settings import Settings
from synergie.surveys.responses import save_response
from tasks.surveys import results_artifact_key
from tests.synergie.surveys.conftest import Held, build_held

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def held(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Held:
    monkeypatch.setenv("SYNERGIE_EMAIL_BACKEND", "file")
    return build_held(make_engine(sqlite_settings.db_url), sqlite_settings)


def _artifact(flow_run_id: object, key: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),  # type: ignore[list-item]
        )
    [artifact] = found
    return str(artifact.data)


def test_a_held_meeting_gets_its_invitations_once_and_its_results_artifact(held: Held) -> None:
    state = surveys(held.meeting_id, return_state=True)
    result = state.result()
    assert (result["opened"], result["invitations"], result["email_sent"]) == (1, 4, 4)
    files = list((held.settings.outbox_dir / "email").glob("*.eml"))
    assert len(files) == 4
    markdown = _artifact(state.state_details.flow_run_id, results_artifact_key(held.meeting_id))
    assert markdown.startswith("# Votre avis sur la rencontre")
    assert "**Taux de réponse** : 0 entreprise(s) présente(s) sur 3" in markdown
    again = surveys(held.meeting_id)
    assert (again["opened"], again["invitations"], again["reminders"], again["email_sent"]) == (
        0,
        0,
        0,
        0,
    )
    assert len(list((held.settings.outbox_dir / "email").glob("*.eml"))) == 4


def _first_answers(held: Held) -> Any:
    """The first contact of the first attending company answers the survey; return that contact."""
    answering = held.contacts(held.came[0])[0]
    with write_transaction(held.engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        survey = session.exec(select(Survey)).one()
        save_response(session=session, survey=survey, contact=answering, answers={"satisfaction": 5},
                      expected_version=0, now=datetime.now(UTC))  # fmt: skip
        session.close()
    return answering


def test_the_daily_run_reminds_once_only_who_has_not_answered(held: Held) -> None:
    surveys()  # as the schedule runs it: every held meeting due
    answering = _first_answers(held)
    with write_transaction(held.engine) as connection:
        session = Session(bind=connection, expire_on_commit=False)
        # Eight days pass (in the database): the reminder is due for the others.
        for recipient in session.exec(select(SurveyRecipient)).all():
            recipient.invited_at -= timedelta(days=8)
            session.add(recipient)
        session.flush()
        session.close()
    same_day = surveys()
    assert (same_day["reminders"], same_day["email_sent"]) == (3, 3)
    rerun = surveys()
    assert (rerun["invitations"], rerun["reminders"], rerun["email_sent"]) == (0, 0, 0)
    reminded = held.messages("-rappel")
    assert len(reminded) == 3 and answering.id not in {m.contact_id for m in reminded}
    assert {m.status for m in reminded} == {MessageStatus.SENT}


def test_an_answer_publishes_the_results_again_and_an_unknown_meeting_says_so_in_french(
    held: Held,
) -> None:
    from flows.survey_results import survey_results

    surveys(held.meeting_id)
    _first_answers(held)
    mails = len(list((held.settings.outbox_dir / "email").glob("*.eml")))
    state = survey_results(held.meeting_id, return_state=True)
    assert state.result() == {
        "meeting_id": held.meeting_id,
        "artifact": results_artifact_key(held.meeting_id),
    }
    markdown = _artifact(state.state_details.flow_run_id, results_artifact_key(held.meeting_id))
    assert "**Taux de réponse** : 1 entreprise(s) présente(s) sur 3" in markdown
    assert len(list((held.settings.outbox_dir / "email").glob("*.eml"))) == mails  # nothing sent
    failed = survey_results(999_999, return_state=True)
    assert failed.is_failed()
    with pytest.raises(Exception, match="Aucune rencontre n° 999999"):
        failed.result()
