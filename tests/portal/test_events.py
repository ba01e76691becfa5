"""The opt-out event: its shape, and emitting it only where a Prefect API will receive it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from models import Channel
from portal.events import OPTED_OUT_EVENT, OptOutEvent, emit_opt_out, opt_out_event_fields
from tests.factories import NOW

EVENT = OptOutEvent(
    contact_public_id="0f3c2a9be4d84b6f9c1d2e3f4a5b6c7d",
    company_id=42,
    channels=(Channel.SMS, Channel.EMAIL),
    source="one-click",
    occurred=NOW,
)


def test_the_event_names_the_company_as_resource_and_the_contact_as_related() -> None:
    fields = opt_out_event_fields(EVENT)
    assert fields["event"] == OPTED_OUT_EVENT == "synergie.contact.opted-out"
    assert fields["resource"]["prefect.resource.id"] == "synergie.company.42"
    assert fields["resource"]["synergie.channels"] == "email,sms"
    assert all(isinstance(value, str) for value in fields["resource"].values())
    assert fields["related"] == [
        {
            "prefect.resource.id": "synergie.contact.0f3c2a9be4d84b6f9c1d2e3f4a5b6c7d",
            "prefect.resource.role": "contact",
        }
    ]
    assert fields["payload"]["channels"] == ["email", "sms"]
    assert fields["occurred"] == NOW


@pytest.fixture
def sent_events() -> Iterator[Callable[[], list[Any]]]:
    """Events reaching Prefect's own asserting client, installed through its documented override."""
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    AssertingEventsClient.reset()
    EventsWorker.set_client_override(AssertingEventsClient)

    def sent() -> list[Any]:
        EventsWorker.drain_all()
        return [event for client in AssertingEventsClient.all for event in client.events]

    try:
        yield sent
    finally:
        EventsWorker.drain_all()
        EventsWorker.set_client_override(None)
        AssertingEventsClient.reset()


def test_without_a_prefect_api_nothing_is_emitted_and_a_warning_says_so(
    sent_events: Callable[[], list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    # Explicitly: another test module may have started the session's Prefect test harness.
    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        caplog.at_level(logging.WARNING, logger="portal.events"),
    ):
        assert not get_current_settings().api.url
        emit_opt_out(EVENT)
    assert "no Prefect API configured" in caplog.text
    # emit_event would have gone to a temporary server, and the event been lost with it.
    assert sent_events() == []


def test_with_a_prefect_api_the_event_is_sent(sent_events: Callable[[], list[Any]]) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Nothing listens there: the asserting client never connects.
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        emit_opt_out(EVENT)
        sent = sent_events()
    assert [(e.event, e.resource.id, e.related[0].id, e.payload["source"]) for e in sent] == [
        (
            OPTED_OUT_EVENT,
            "synergie.company.42",
            "synergie.contact.0f3c2a9be4d84b6f9c1d2e3f4a5b6c7d",
            "one-click",
        )
    ]
    assert sent[0].occurred == NOW


def test_survey_and_meeting_held_events_name_their_resources(
    sent_events: Callable[[], list[Any]],
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from portal.events import (
        MEETING_HELD_EVENT,
        SURVEY_SUBMITTED_EVENT,
        MeetingHeldEvent,
        SurveySubmittedEvent,
        emit_meeting_held,
        emit_survey_submitted,
    )

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert emit_meeting_held(MeetingHeldEvent(meeting_id=7, present=15, occurred=NOW))
        emit_survey_submitted(
            SurveySubmittedEvent(survey_id=3, meeting_id=7, company_id=42,
                                 contact_public_id="abc", version=2, occurred=NOW)
        )  # fmt: skip
        sent = sent_events()
    assert [(e.event, e.resource.id) for e in sent] == [
        (MEETING_HELD_EVENT, "synergie.meeting.7"),
        (SURVEY_SUBMITTED_EVENT, "synergie.survey.3"),
    ]
    assert sent[0].payload == {"meeting_id": 7, "present": 15}
    assert {r.id for r in sent[1].related} == {
        "synergie.meeting.7", "synergie.company.42", "synergie.contact.abc",
    }  # fmt: skip
