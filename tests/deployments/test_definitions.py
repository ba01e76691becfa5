"""The deployments are written once: prefect.yaml is what the generator writes, and says what runs."""

from __future__ import annotations

import yaml

from deployments.definitions import build_deployments
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
    for deployment in build_deployments():
        for item in deployment.schedules:
            minute, hour = item.schedule.cron.split()[:2]  # type: ignore[union-attr]
            at = f"{hour} h" + (f" {int(minute):02d}" if minute != "0" else "")
            assert f"à {at} (heure de Paris)" in (deployment.description or ""), deployment.name
