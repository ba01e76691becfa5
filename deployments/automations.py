"""Server-side automations the deployments rely on: ``python -m deployments.automations``.

Today one: a flow run whose process died (a worker killed, a machine lost) stops sending
heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds apart) and would stay *Running* in the
UI for ever; Prefect's proactive trigger marks it *Crashed* when no heartbeat nor final state
came within ``SYNERGIE_ZOMBIE_AFTER_SECONDS``. Nothing is lost meanwhile: the outbox's leases
hand the dead run's messages to the next run. Run after ``prefect deploy --all`` (the
``synergie-upgrade`` unit does); running it again updates the automation, never duplicates it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.settings import get_current_settings

ZOMBIE_AUTOMATION = "synergie-crash-zombie-runs"
# Three heartbeats of the shipped frequency (60 s, deploy/env/synergie.env) may be missed.
DEFAULT_ZOMBIE_AFTER_SECONDS = 180
FINAL_EVENTS = {
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
}


def zombie_automation(after_seconds: int) -> Automation:
    """The automation that marks a run *Crashed* once it went ``after_seconds`` without a sign of life."""
    return Automation(
        name=ZOMBIE_AUTOMATION,
        description="Un run sans signe de vie (processus arrêté brutalement) passe à Crashed ; "
        "l'outbox confie ses messages au run suivant.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *FINAL_EVENTS},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},  # type: ignore[arg-type]
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                name=None,
                force=False,
                state=StateType.CRASHED,
                message=f"Aucun signe de vie depuis {after_seconds} s : processus arrêté.",
            )
        ],
    )


async def ensure_automations(after_seconds: int) -> str:
    """Create or update the automations on the configured Prefect API; return what was done."""
    wanted = zombie_automation(after_seconds)
    try:
        existing = await Automation.aread(name=ZOMBIE_AUTOMATION)
    except ValueError:  # Prefect's "not found"
        await wanted.acreate()
        return f"created {ZOMBIE_AUTOMATION} ({after_seconds} s)"
    wanted.id = existing.id
    await wanted.aupdate()
    return f"updated {ZOMBIE_AUTOMATION} ({after_seconds} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--after-seconds",
        type=int,
        default=int(os.environ.get("SYNERGIE_ZOMBIE_AFTER_SECONDS", DEFAULT_ZOMBIE_AFTER_SECONDS)),
        help="silence after which a running flow run is marked Crashed",
    )
    args = parser.parse_args(argv)
    beat = get_current_settings().flows.heartbeat_frequency or 0
    if args.after_seconds < 2 * max(beat, 30):
        parser.error(
            f"--after-seconds {args.after_seconds}: at least two heartbeats "
            f"(PREFECT_FLOWS_HEARTBEAT_FREQUENCY={beat}), or healthy runs would be marked Crashed"
        )
    print(asyncio.run(ensure_automations(args.after_seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
