"""The portal's Prefect events: what an opt-out tells the flows, and the one place that emits it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.enums import Channel

__all__ = [
    "FLOWS_SUBMITTED_EVENT",
    "INVITATION_ANSWERED_EVENT",
    "OPTED_OUT_EVENT",
    "REFERRAL_CREATED_EVENT",
    "FlowsSubmittedEvent",
    "MeetingEvent",
    "OptOutEvent",
    "emit_flows_submitted",
    "emit_meeting_event",
    "emit_opt_out",
    "flows_submitted_event_fields",
    "meeting_event_fields",
    "opt_out_event_fields",
]

logger = logging.getLogger(__name__)

OPTED_OUT_EVENT = "synergie.contact.opted-out"


@dataclass(frozen=True, slots=True)
class OptOutEvent:
    """A contact refused one channel, or every channel (``scope="all"``), of the programme."""

    contact_public_id: str
    company_id: int
    channels: tuple[Channel, ...]
    source: str
    occurred: datetime
    scope: str = "channel"


def opt_out_event_fields(event: OptOutEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    channels = sorted(str(channel) for channel in event.channels)
    return {
        "event": OPTED_OUT_EVENT,
        "resource": {
            "prefect.resource.id": f"synergie.company.{event.company_id}",
            # Labels, unlike the payload, can be matched by deployment triggers.
            "synergie.source": event.source,
            "synergie.scope": event.scope,
            "synergie.channels": ",".join(channels),
        },
        "related": [
            {
                "prefect.resource.id": f"synergie.contact.{event.contact_public_id}",
                "prefect.resource.role": "contact",
            }
        ],
        "payload": {
            "company_id": event.company_id,
            "contact_public_id": event.contact_public_id,
            "channels": channels,
            "source": event.source,
            "scope": event.scope,
        },
        "occurred": event.occurred,
    }


def prefect_api_configured() -> bool:
    """Whether a Prefect API (server or Cloud) is configured to receive events."""
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def emit_opt_out(event: OptOutEvent) -> None:
    """Emit ``synergie.contact.opted-out`` to the configured Prefect API; log, never raise, on failure."""
    try:
        # Without an API URL emit_event would start a temporary server and the event would
        # die with it (STACK-NOTES): say so instead of pretending it was delivered.
        if not prefect_api_configured():
            logger.warning(
                "no Prefect API configured (PREFECT_API_URL): event %s for contact %s not emitted",
                OPTED_OUT_EVENT, event.contact_public_id,
            )  # fmt: skip
            return
        from prefect.events import emit_event

        if emit_event(**opt_out_event_fields(event)) is None:
            logger.warning(
                "Prefect did not accept event %s for contact %s",
                OPTED_OUT_EVENT, event.contact_public_id,
            )  # fmt: skip
    except Exception:
        # The opt-out is already committed; a lost event must not turn into an error page.
        logger.exception(
            "emitting %s for contact %s failed", OPTED_OUT_EVENT, event.contact_public_id
        )


INVITATION_ANSWERED_EVENT = "synergie.invitation.answered"
REFERRAL_CREATED_EVENT = "synergie.referral.created"


@dataclass(frozen=True, slots=True)
class MeetingEvent:
    """A company answered a meeting invitation, or a participant brought a company (``referral_id``)."""

    name: str  # INVITATION_ANSWERED_EVENT or REFERRAL_CREATED_EVENT
    meeting_id: int
    company_id: int
    contact_public_id: str
    occurred: datetime
    answer: str | None = None
    referral_id: int | None = None


def meeting_event_fields(event: MeetingEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for a meeting event."""
    payload: dict[str, Any] = {
        "meeting_id": event.meeting_id,
        "company_id": event.company_id,
        "contact_public_id": event.contact_public_id,
    }
    if event.answer is not None:
        payload["answer"] = event.answer
    if event.referral_id is not None:
        payload["referral_id"] = event.referral_id
    return {
        "event": event.name,
        "resource": {"prefect.resource.id": f"synergie.meeting.{event.meeting_id}"},
        "related": [
            {
                "prefect.resource.id": f"synergie.company.{event.company_id}",
                "prefect.resource.role": "company",
            },
            {
                "prefect.resource.id": f"synergie.contact.{event.contact_public_id}",
                "prefect.resource.role": "contact",
            },
        ],  # fmt: skip
        "payload": payload,
        "occurred": event.occurred,
    }


def emit_meeting_event(event: MeetingEvent) -> None:
    """Emit a meeting event to the configured Prefect API; log, never raise (the schedule catches up)."""
    try:
        if not prefect_api_configured():
            logger.warning(
                "no Prefect API configured (PREFECT_API_URL): event %s for meeting %s not emitted",
                event.name, event.meeting_id,
            )  # fmt: skip
            return
        from prefect.events import emit_event

        if emit_event(**meeting_event_fields(event)) is None:
            logger.warning(
                "Prefect did not accept event %s for meeting %s", event.name, event.meeting_id
            )
    except Exception:
        # The answer is committed; the scheduled meeting-sync run does what the event would have.
        logger.exception("emitting %s for meeting %s failed", event.name, event.meeting_id)


FLOWS_SUBMITTED_EVENT = "synergie.flows.submitted"


@dataclass(frozen=True, slots=True)
class FlowsSubmittedEvent:
    """A company sent its flow questionnaire back through the portal (the rows are committed)."""

    company_id: int
    submission_id: int
    rows: int
    occurred: datetime


def flows_submitted_event_fields(event: FlowsSubmittedEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    return {
        "event": FLOWS_SUBMITTED_EVENT,
        "resource": {"prefect.resource.id": f"synergie.company.{event.company_id}"},
        "related": [
            {
                "prefect.resource.id": f"synergie.flow-submission.{event.submission_id}",
                "prefect.resource.role": "submission",
            }
        ],
        "payload": {
            "company_id": event.company_id,
            "submission_id": event.submission_id,
            "rows": event.rows,
        },
        "occurred": event.occurred,
    }


def emit_flows_submitted(event: FlowsSubmittedEvent) -> None:
    """Emit ``synergie.flows.submitted`` to the configured Prefect API; log, never raise, on failure."""
    try:
        if not prefect_api_configured():
            # The scheduled run of inventory-review catches the submission up anyway.
            logger.warning(
                "no Prefect API configured (PREFECT_API_URL): event %s for company %s not emitted",
                FLOWS_SUBMITTED_EVENT, event.company_id,
            )  # fmt: skip
            return
        from prefect.events import emit_event

        if emit_event(**flows_submitted_event_fields(event)) is None:
            logger.warning(
                "Prefect did not accept event %s for company %s",
                FLOWS_SUBMITTED_EVENT,
                event.company_id,
            )
    except Exception:
        logger.exception(
            "emitting %s for company %s failed", FLOWS_SUBMITTED_EVENT, event.company_id
        )
