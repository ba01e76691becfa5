"""The inventory-review deployment starts on the portal's event and also runs on a schedule."""

from __future__ import annotations

from deployments.definitions import build_deployments
from portal.events import FLOWS_SUBMITTED_EVENT


def test_inventory_review_has_the_event_trigger_and_a_catch_up_schedule() -> None:
    deployments = {d.name: d for d in build_deployments()}
    review = deployments["inventory-review"]
    [trigger] = review.triggers
    assert set(trigger.expect) == {FLOWS_SUBMITTED_EVENT}
    assert trigger.parameters == {"company_id": "{{ event.payload.company_id }}"}
    assert review.schedules and "toutes les 30 minutes" in (review.description or "")
    assert "inventory-accept" in deployments
