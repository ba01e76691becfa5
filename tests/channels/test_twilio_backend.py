"""TwilioSmsBackend: the real twilio Client against a local server speaking Twilio's API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from channels.base import OutgoingSms, SmsBackend
from channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RecipientOptedOutError,
    SenderSideError,
    TransientDeliveryError,
)
from channels.twilio_sms import TwilioSmsBackend
from tests.servers.twilio_server import FakeTwilio

MakeSms = Callable[..., OutgoingSms]


def test_backend_satisfies_the_protocol(twilio_backend: TwilioSmsBackend) -> None:
    assert isinstance(twilio_backend, SmsBackend)


def test_a_batch_is_sent_with_one_client_and_one_connection(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    batch = [make_sms(i) for i in range(5)]

    results = twilio_backend.send_messages(batch)

    assert all(r.ok for r in results)
    assert [r.key for r in results] == [m.key for m in batch]
    seen = twilio_server.messages
    assert [r.provider_id for r in results] == [m["sid"] for m in seen]
    assert all(re.fullmatch(r"SM[0-9a-f]{32}", m["sid"]) for m in seen)
    requests = twilio_server.requests
    assert [r.form for r in requests] == [
        {"To": m.to, "From": "+33700000000", "Body": m.body} for m in batch
    ]
    assert {r.path for r in requests} == {
        f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    }
    assert {r.basic_auth for r in requests} == {
        (twilio_server.account_sid, twilio_server.auth_token)
    }
    assert twilio_server.connections == 1  # keep-alive: one HTTP session per batch
    assert twilio_backend.clients_created == 1


def test_messaging_service_sid_sender(twilio_server: FakeTwilio, make_sms: MakeSms) -> None:
    service = "MG" + "a" * 32
    backend = TwilioSmsBackend(
        account_sid=twilio_server.account_sid,
        auth_token=twilio_server.auth_token,
        sender=service,
        api_url=twilio_server.url,
    )

    [result] = backend.send_messages([make_sms(1)])

    assert result.ok
    [request] = twilio_server.requests
    assert request.form == {
        "To": "+33600000001",
        "MessagingServiceSid": service,
        "Body": make_sms(1).body,
    }


def test_429_is_transient_and_the_batch_goes_on(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    twilio_server.throttle_next(1)

    results = twilio_backend.send_messages([make_sms(1), make_sms(2)])

    error = results[0].error
    assert isinstance(error, TransientDeliveryError)
    assert error.code == 20429
    assert "Too Many Requests" in error.detail
    assert results[1].ok
    assert [r.status for r in twilio_server.requests] == [429, 201]  # no hidden client retry


def test_500_is_transient(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    twilio_server.crash_next(2)

    results = twilio_backend.send_messages([make_sms(1), make_sms(2), make_sms(3)])

    assert [type(r.error) for r in results[:2]] == [TransientDeliveryError] * 2
    assert results[2].ok
    assert len(twilio_server.messages) == 1


def test_invalid_number_is_permanent_with_code_21211(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    twilio_server.mark_invalid("+33600000002")

    results = twilio_backend.send_messages([make_sms(1), make_sms(2), make_sms(3)])

    error = results[1].error
    assert isinstance(error, PermanentDeliveryError)
    assert not isinstance(error, RecipientOptedOutError)
    assert error.code == 21211
    assert "+33600000002 is not a valid phone number" in error.detail
    assert [m["to"] for m in twilio_server.messages] == ["+33600000001", "+33600000003"]


def test_unsubscribed_recipient_is_opted_out(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    twilio_server.mark_opted_out("+33600000001")

    results = twilio_backend.send_messages([make_sms(1), make_sms(2)])

    error = results[0].error
    assert isinstance(error, RecipientOptedOutError)
    assert error.code == 21610
    assert results[1].ok


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (21611, "This 'From' number has exceeded the maximum number of queued messages",
         TransientDeliveryError),
        (21606, "The 'From' phone number provided is not a valid message-capable number",
         SenderSideError),
    ],
)  # fmt: skip
def test_sender_side_4xx_never_blames_the_recipient(
    twilio_server: FakeTwilio,
    twilio_backend: TwilioSmsBackend,
    make_sms: MakeSms,
    code: int,
    message: str,
    kind: type[DeliveryError],
) -> None:
    twilio_server.fail_number("+33600000001", code, message)

    [result] = twilio_backend.send_messages([make_sms(1)])

    assert type(result.error) is kind
    assert result.error.code == code


def test_bad_token_fails_the_batch_as_ours_after_one_request(
    twilio_server: FakeTwilio, make_sms: MakeSms
) -> None:
    # Wrong credentials are our configuration, not the recipient's fault: SenderSideError (the
    # outbox stops the run, the messages go out once fixed), and the rest is not even tried.
    backend = TwilioSmsBackend(
        account_sid=twilio_server.account_sid,
        auth_token="not-the-token",
        sender="+33700000000",
        api_url=twilio_server.url,
    )

    results = backend.send_messages([make_sms(i) for i in range(4)])

    assert all(isinstance(r.error, SenderSideError) for r in results)
    assert {r.error.code for r in results if r.error} == {20003}
    assert [r.status for r in twilio_server.requests] == [401]
    assert twilio_server.messages == []


def test_unreachable_api_is_transient_and_bounded(closed_port: int, make_sms: MakeSms) -> None:
    backend = TwilioSmsBackend(
        account_sid="AC" + "0" * 32,
        auth_token="t",
        sender="+33700000000",
        api_url=f"http://127.0.0.1:{closed_port}",
        max_connection_failures=2,
    )

    results = backend.send_messages([make_sms(i) for i in range(5)])

    assert len(results) == 5
    assert all(isinstance(r.error, TransientDeliveryError) for r in results)
    assert "not attempted" in str(results[4].error)


def test_silent_api_times_out_quickly(silent_port: int, make_sms: MakeSms) -> None:
    backend = TwilioSmsBackend(
        account_sid="AC" + "0" * 32,
        auth_token="t",
        sender="+33700000000",
        api_url=f"http://127.0.0.1:{silent_port}",
        timeout=0.2,
        max_connection_failures=2,
    )
    started = time.monotonic()

    results = backend.send_messages([make_sms(i) for i in range(20)])

    assert time.monotonic() - started < 2
    assert all(isinstance(r.error, TransientDeliveryError) for r in results)


def test_api_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="api_url"):
        TwilioSmsBackend(
            account_sid="AC" + "0" * 32,
            auth_token="t",
            sender="+33700000000",
            api_url="127.0.0.1:80",
        )


def test_a_number_not_in_e164_is_refused_with_21211_as_twilio_does(
    twilio_server: FakeTwilio, twilio_backend: TwilioSmsBackend, make_sms: MakeSms
) -> None:
    # Issue 9, item 3: a caller's number stored as typed went out as To=0639981001.
    national = make_sms(1, to="0639981001")

    [result] = twilio_backend.send_messages([national])

    assert isinstance(result.error, PermanentDeliveryError) and result.error.code == 21211
    assert twilio_server.messages == []
