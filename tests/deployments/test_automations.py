"""The automation that marks a dead run Crashed, created on a real Prefect API, once."""

from __future__ import annotations

import asyncio

import pytest

from deployments.automations import ZOMBIE_AUTOMATION, ensure_automations, main


def test_created_once_then_updated(prefect_harness: None) -> None:
    from prefect.automations import Automation
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger

    assert asyncio.run(ensure_automations(120)).startswith("created")
    assert asyncio.run(ensure_automations(240)).startswith("updated")
    stored = asyncio.run(Automation.aread(name=ZOMBIE_AUTOMATION))
    trigger, action = stored.trigger, stored.actions[0]
    assert isinstance(trigger, EventTrigger) and isinstance(action, ChangeFlowRunState)
    assert trigger.posture == "Proactive" and trigger.within.total_seconds() == 240
    assert action.state == "CRASHED"


def test_a_window_shorter_than_two_heartbeats_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}), pytest.raises(SystemExit):
        main(["--after-seconds", "90"])
    assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY=60" in capsys.readouterr().err
