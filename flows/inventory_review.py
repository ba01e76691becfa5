"""The ``inventory_review`` flow: a company sent its flow questionnaire; tell the officer and log the review time.

Started by the portal's ``synergie.flows.submitted`` event, and on a schedule that catches up
whatever no event started; a submission is reviewed once whichever run gets it first.
"""

from __future__ import annotations

from prefect import flow

from models.enums import Channel
from synergie.settings import load_settings
from tasks.inventory import review_submitted_inventories
from tasks.outbox import send_prepared_messages


@flow(name="inventory_review")
def inventory_review(company_id: int | None = None) -> dict[str, int]:
    """Review the submitted questionnaires (one company's, or all), then send the officer's e-mails."""
    settings = load_settings()
    reviewed = review_submitted_inventories(settings=settings, company_id=company_id)
    sent = send_prepared_messages(settings=settings, channel=Channel.EMAIL)
    return {"reviewed": len(reviewed), **{f"email_{k}": v for k, v in sent.items()}}


if __name__ == "__main__":
    inventory_review()
