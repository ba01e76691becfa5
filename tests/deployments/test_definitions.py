"""The deployments are written once: prefect.yaml is what the generator writes, and says what runs."""

from __future__ import annotations

import pytest
import yaml

from deployments.definitions import Every, build_deployments
from deployments.write_yaml import PREFECT_YAML, render


def test_committed_prefect_yaml_is_what_the_generator_writes() -> None:
    assert PREFECT_YAML.read_text(encoding="utf-8") == render(), (
        "deployments/prefect.yaml is stale: run python -m deployments.write_yaml"
    )


def test_prefect_yaml_lists_every_deployment_with_its_schedules_and_entrypoint() -> None:
    document = yaml.safe_load(render())
    by_name = {entry["name"]: entry for entry in document["deployments"]}
    for deployment in build_deployments():
        entry = by_name.pop(deployment.name)
        path, _, function = entry["entrypoint"].partition(":")
        assert function and (PREFECT_YAML.parents[1] / path).is_file()
        crons = [s["cron"] for s in entry.get("schedules", [])]
        assert crons == [s.schedule.cron for s in deployment.schedules]  # type: ignore[union-attr]
        assert entry.get("concurrency_limit") == deployment.concurrency_limit
    assert by_name == {}


def test_descriptions_state_the_hour_the_schedule_runs_at() -> None:
    seen_steps = 0
    for deployment in build_deployments():
        for item in deployment.schedules:
            minute, hour = item.schedule.cron.split()[:2]  # type: ignore[union-attr]
            if minute.startswith("*/"):
                assert hour == "*", deployment.name
                said = f"toutes les {int(minute[2:])} minutes (heure de Paris)"
                seen_steps += 1
            else:
                at = f"{hour} h" + (f" {int(minute):02d}" if minute != "0" else "")
                said = f"à {at} (heure de Paris)"
            assert said in (deployment.description or ""), deployment.name
    assert seen_steps >= 1  # the mailbox, every 15 minutes


def test_every_writes_a_step_in_minutes_as_cron_and_in_french() -> None:
    every = Every("*", minutes=15)
    assert every.cron().cron == "*/15 * * * *"  # type: ignore[attr-defined]
    assert every.french() == "chaque jour, toutes les 15 minutes"
    assert Every("1-5", 7, 30).cron().cron == "30 7 * * 1-5"  # type: ignore[attr-defined]
    for wrong in ({"hour": 8, "minutes": 15}, {}, {"minutes": 7}):
        with pytest.raises(ValueError):
            Every("*", **wrong)  # type: ignore[arg-type]


def test_portal_events_start_visits_and_imports() -> None:
    """An interested call starts that company's visit proposal; an uploaded listing starts its import."""
    from deployments.definitions import build_deployments
    from portal.events import CALL_LOGGED_EVENT, LISTING_UPLOADED_EVENT

    by_name = {d.name: d for d in build_deployments()}
    (interested,) = by_name["visits"].triggers
    assert interested.expect == {CALL_LOGGED_EVENT}
    assert interested.match.root["synergie.outcome"] == "interested"
    assert interested.parameters == {
        "params": {"company_siret": "{{ event.payload.company_siret }}", "dry_run": False}
    }
    assert by_name["visits"].schedules  # the schedule catches up what no event started
    (uploaded,) = by_name["import-listing"].triggers
    assert uploaded.expect == {LISTING_UPLOADED_EVENT}
    assert uploaded.parameters["params"]["path"] == "{{ event.payload.path }}"  # type: ignore[index]


def test_a_held_meeting_starts_its_surveys_and_a_daily_run_catches_up() -> None:
    """Recording attendance emits synergie.meeting.held: the surveys deployment starts for that meeting."""
    from portal.events import MEETING_HELD_EVENT

    by_name = {d.name: d for d in build_deployments()}
    (held,) = by_name["surveys"].triggers
    assert held.expect == {MEETING_HELD_EVENT} == {"synergie.meeting.held"}
    assert held.match.root["prefect.resource.id"] == "synergie.meeting.*"
    assert held.parameters == {"meeting_id": "{{ event.payload.meeting_id }}"}
    assert [s.schedule.cron for s in by_name["surveys"].schedules] == ["30 9 * * *"]  # type: ignore[union-attr]


def test_every_event_the_portal_and_flows_emit_starts_a_deployment() -> None:
    """DESIGN: events are consumed by deployment triggers; one nobody listens to is a dead end."""
    import portal.events

    emitted = {value for name, value in vars(portal.events).items() if name.endswith("_EVENT")}
    expected = {event for d in build_deployments() for t in d.triggers for event in t.expect}
    assert len(emitted) >= 8 and emitted - expected == set()


def test_each_survey_answer_publishes_its_meetings_results_again() -> None:
    from portal.events import SURVEY_SUBMITTED_EVENT

    by_name = {d.name: d for d in build_deployments()}
    (submitted,) = by_name["survey-results"].triggers
    assert submitted.expect == {SURVEY_SUBMITTED_EVENT} == {"synergie.survey.submitted"}
    assert submitted.match.root["prefect.resource.id"] == "synergie.survey.*"
    assert submitted.parameters == {"meeting_id": "{{ event.payload.meeting_id }}"}
