"""The portal's Prefect events: what an opt-out tells the flows, and the one place that emits it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.enums import Channel

__all__ = [
    "CALL_LOGGED_EVENT",
    "CallLoggedEvent",
    "FLOWS_SUBMITTED_EVENT",
    "FlowsSubmittedEvent",
    "INVITATION_ANSWERED_EVENT",
    "LISTING_UPLOADED_EVENT",
    "ListingUploadedEvent",
    "MEETING_HELD_EVENT",
    "MeetingHeldEvent",
    "MeetingEvent",
    "OPTED_OUT_EVENT",
    "OptOutEvent",
    "REFERRAL_CREATED_EVENT",
    "SURVEY_SUBMITTED_EVENT",
    "SurveySubmittedEvent",
    "call_logged_event_fields",
    "emit_call_logged",
    "emit_flows_submitted",
    "emit_listing_uploaded",
    "emit_meeting_held",
    "emit_meeting_event",
    "emit_opt_out",
    "emit_survey_submitted",
    "flows_submitted_event_fields",
    "listing_uploaded_event_fields",
    "meeting_event_fields",
    "meeting_held_event_fields",
    "opt_out_event_fields",
    "survey_submitted_event_fields",
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


def _emit(fields: dict[str, Any], what: str) -> bool:
    """Emit one event; return whether Prefect took it (log, never raise).

    Without an API URL emit_event would start a temporary server and the event would die with
    it (STACK-NOTES): say so instead of pretending it was delivered. What the event starts is
    committed before it is emitted, and every reacting deployment also runs on a schedule that
    catches up a lost event: a failure here must never become an error page.
    """
    try:
        if not prefect_api_configured():
            logger.warning("no Prefect API configured (PREFECT_API_URL): %s not emitted", what)
            return False
        from prefect.events import emit_event

        if emit_event(**fields) is None:
            logger.warning("Prefect did not accept %s", what)
            return False
        return True
    except Exception:
        logger.exception("emitting %s failed", what)
        return False


def emit_opt_out(event: OptOutEvent) -> None:
    """Emit ``synergie.contact.opted-out`` to the configured Prefect API; log, never raise, on failure."""
    _emit(
        opt_out_event_fields(event),
        f"event {OPTED_OUT_EVENT} for contact {event.contact_public_id}",
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
    _emit(meeting_event_fields(event), f"event {event.name} for meeting {event.meeting_id}")


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
    _emit(
        flows_submitted_event_fields(event),
        f"event {FLOWS_SUBMITTED_EVENT} for company {event.company_id}",
    )


CALL_LOGGED_EVENT = "synergie.call.logged"
LISTING_UPLOADED_EVENT = "synergie.listing.uploaded"


@dataclass(frozen=True, slots=True)
class CallLoggedEvent:
    """A volunteer noted a call's outcome (or corrected it) from their call link."""

    company_id: int
    company_siret: str
    task_id: int
    caller_id: int
    outcome: str
    stage: str
    occurred: datetime
    corrected: bool = False


def call_logged_event_fields(event: CallLoggedEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    return {
        "event": CALL_LOGGED_EVENT,
        "resource": {
            "prefect.resource.id": f"synergie.company.{event.company_id}",
            # A label, so the visits deployment's trigger can match interested outcomes only.
            "synergie.outcome": event.outcome,
        },
        "related": [
            {
                "prefect.resource.id": f"synergie.caller.{event.caller_id}",
                "prefect.resource.role": "caller",
            },
        ],  # fmt: skip
        "payload": {
            "company_id": event.company_id,
            "company_siret": event.company_siret,
            "task_id": event.task_id,
            "outcome": event.outcome,
            "stage": event.stage,
            "corrected": event.corrected,
        },
        "occurred": event.occurred,
    }


@dataclass(frozen=True, slots=True)
class ListingUploadedEvent:
    """Staff uploaded a listing through the portal: the file kept and the import's filters."""

    path: str
    staff_id: int
    occurred: datetime
    communes: tuple[str, ...] = ()
    naf_prefixes: tuple[str, ...] = ()
    min_staff_band: str = ""
    include_closed: bool = False
    dry_run: bool = False


def listing_uploaded_event_fields(event: ListingUploadedEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    return {
        "event": LISTING_UPLOADED_EVENT,
        "resource": {"prefect.resource.id": f"synergie.listing.{event.staff_id}"},
        "payload": {
            "path": event.path,
            "communes": list(event.communes),
            "naf_prefixes": list(event.naf_prefixes),
            "min_staff_band": event.min_staff_band,
            "include_closed": event.include_closed,
            "dry_run": event.dry_run,
        },
        "occurred": event.occurred,
    }


def emit_call_logged(event: CallLoggedEvent) -> None:
    """Emit ``synergie.call.logged`` to the configured Prefect API; log, never raise, on failure."""
    _emit(call_logged_event_fields(event), f"{CALL_LOGGED_EVENT} for task {event.task_id}")


def emit_listing_uploaded(event: ListingUploadedEvent) -> bool:
    """Emit ``synergie.listing.uploaded``; return whether Prefect took it."""
    return _emit(listing_uploaded_event_fields(event), f"{LISTING_UPLOADED_EVENT} ({event.path})")


SURVEY_SUBMITTED_EVENT = "synergie.survey.submitted"
MEETING_HELD_EVENT = "synergie.meeting.held"


@dataclass(frozen=True, slots=True)
class SurveySubmittedEvent:
    """A contact sent a survey answer through the portal (committed), first time or updated."""

    survey_id: int
    meeting_id: int
    company_id: int
    contact_public_id: str
    version: int
    occurred: datetime


def survey_submitted_event_fields(event: SurveySubmittedEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    return {
        "event": SURVEY_SUBMITTED_EVENT,
        "resource": {"prefect.resource.id": f"synergie.survey.{event.survey_id}"},
        "related": [
            {
                "prefect.resource.id": f"synergie.meeting.{event.meeting_id}",
                "prefect.resource.role": "meeting",
            },
            {
                "prefect.resource.id": f"synergie.company.{event.company_id}",
                "prefect.resource.role": "company",
            },
            {
                "prefect.resource.id": f"synergie.contact.{event.contact_public_id}",
                "prefect.resource.role": "contact",
            },
        ],  # fmt: skip
        "payload": {
            "survey_id": event.survey_id,
            "meeting_id": event.meeting_id,
            "company_id": event.company_id,
            "contact_public_id": event.contact_public_id,
            "version": event.version,
        },
        "occurred": event.occurred,
    }


def emit_survey_submitted(event: SurveySubmittedEvent) -> None:
    """Emit ``synergie.survey.submitted`` to the configured Prefect API; log, never raise, on failure."""
    _emit(
        survey_submitted_event_fields(event),
        f"{SURVEY_SUBMITTED_EVENT} for survey {event.survey_id}",
    )


@dataclass(frozen=True, slots=True)
class MeetingHeldEvent:
    """Staff recorded a meeting's attendance: the meeting is held (emitted by the attendance task)."""

    meeting_id: int
    present: int
    occurred: datetime


def meeting_held_event_fields(event: MeetingHeldEvent) -> dict[str, Any]:
    """Return the keyword arguments of ``prefect.events.emit_event`` for ``event``."""
    return {
        "event": MEETING_HELD_EVENT,
        "resource": {"prefect.resource.id": f"synergie.meeting.{event.meeting_id}"},
        "payload": {"meeting_id": event.meeting_id, "present": event.present},
        "occurred": event.occurred,
    }


def emit_meeting_held(event: MeetingHeldEvent) -> bool:
    """Emit ``synergie.meeting.held``; return whether Prefect took it (the daily surveys run catches up)."""
    return _emit(
        meeting_held_event_fields(event), f"{MEETING_HELD_EVENT} for meeting {event.meeting_id}"
    )
