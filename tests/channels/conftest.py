"""Fixtures for channel tests: local SMTP and Twilio servers, backends using them, factories."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channels.base import OutgoingEmail, OutgoingSms
from channels.smtp import SmtpEmailBackend
from channels.twilio_sms import TwilioSmsBackend
from tests.servers.smtp_server import SmtpTestServer
from tests.servers.twilio_server import FakeTwilio

SENDER = "Synergie – Métropole <synergie@metropole.example>"
SMTP_LOGIN = ("apikey", "s3cret-relay-key")


@pytest.fixture(scope="session")
def _smtp_auth_server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer(credentials=SMTP_LOGIN) as server:
        yield server


@pytest.fixture
def smtp_auth_server(_smtp_auth_server: SmtpTestServer) -> SmtpTestServer:
    """An SMTP server that requires AUTH with SMTP_LOGIN, reset."""
    _smtp_auth_server.reset()
    return _smtp_auth_server


@pytest.fixture
def smtp_backend(smtp_server: SmtpTestServer) -> SmtpEmailBackend:
    """A backend for the local server: no TLS, no login, short timeout."""
    return smtp_server.client(
        sender=SENDER, reply_to="contact@metropole.example", local_hostname="client.test.invalid"
    )


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    """A fresh fake Twilio per test (cheap: a ThreadingHTTPServer in a thread)."""
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def twilio_backend(twilio_server: FakeTwilio) -> TwilioSmsBackend:
    """A Twilio backend pointed at the fake server, sending from a French long code."""
    return TwilioSmsBackend(
        account_sid=twilio_server.account_sid,
        auth_token=twilio_server.auth_token,
        sender="+33700000000",
        api_url=twilio_server.url,
        timeout=5,
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A port nobody listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def make_email() -> Callable[..., OutgoingEmail]:
    """Return a factory of distinct, valid e-mails: ``make_email(3, subject=...)``."""

    def make(index: int = 0, **overrides: Any) -> OutgoingEmail:
        fields: dict[str, Any] = {
            "key": f"campaign:2025/email/{index}",
            "to": f"contact{index}@entreprise.example",
            "to_name": f"Contact {index}",
            "subject": f"Atelier d'écologie industrielle n°{index}",
            "text": f"Bonjour,\n\nVous êtes invité à l'atelier {index}.\n\nL'équipe Synergie\n",
            "html": f"<p>Bonjour,</p><p>Vous êtes invité à l'<b>atelier {index}</b>.</p>",
            "message_id": f"<{index}.outbox@synergie.example>",
            "headers": {
                "List-Unsubscribe": f"<https://synergie.example/u/{index}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        }
        fields.update(overrides)
        return OutgoingEmail(**fields)

    return make


@pytest.fixture
def make_sms() -> Callable[..., OutgoingSms]:
    """Return a factory of distinct SMS: ``make_sms(3, to=...)``."""

    def make(index: int = 0, **overrides: Any) -> OutgoingSms:
        fields: dict[str, Any] = {
            "key": f"campaign:2025/sms/{index}",
            "to": f"+336{index:08d}",
            "body": f"Synergie : rappel de l'atelier n°{index} demain à 9h. STOP au 36111",
        }
        fields.update(overrides)
        return OutgoingSms(**fields)

    return make
