"""A real HTTP server on 127.0.0.1 speaking the slice of Twilio's REST API that Synergie uses."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs

__all__ = ["FakeTwilio", "ReceivedRequest"]

_E164 = re.compile(r"\+[1-9]\d{6,14}\Z")
_MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/(?P<sid>AC[0-9a-fA-F]{32})/Messages\.json\Z")


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    """Return an error body shaped like Twilio's."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    form: dict[str, str]
    basic_auth: tuple[str, str] | None
    status: int


@dataclass
class _State:
    """What the server saw and the faults still to inject, shared across threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    throttle_next: int = 0
    crash_next: int = 0
    number_errors: dict[str, tuple[int, str, int]] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    """Answers POST .../Messages.json like Twilio, checks Basic auth, injects configured faults."""

    protocol_version = "HTTP/1.1"  # keep-alive, so a test can count the client's connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(payload)

    def _basic_auth(self) -> tuple[str, str] | None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def do_GET(self) -> None:
        self._reply(404, twilio_error(20404, "The requested resource was not found", 404))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {name: values[-1] for name, values in parse_qs(raw, keep_blank_values=True).items()}
        auth = self._basic_auth()
        status, body = self._answer(form, auth)
        with self.server.state.lock:
            self.server.state.requests.append(
                ReceivedRequest("POST", self.path, form, auth, status)
            )
        self._reply(status, body)

    def _answer(
        self, form: dict[str, str], auth: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        fake: FakeTwilio = self.server.fake
        state = self.server.state
        match = _MESSAGES_PATH.match(self.path)
        if match is None:
            return 404, twilio_error(20404, "The requested resource was not found", 404)
        if auth != (fake.account_sid, fake.auth_token) or match["sid"] != fake.account_sid:
            return 401, twilio_error(20003, "Authenticate", 401)
        to = form.get("To", "")
        with state.lock:
            if state.throttle_next > 0:
                state.throttle_next -= 1
                return 429, twilio_error(20429, "Too Many Requests", 429)
            if state.crash_next > 0:
                state.crash_next -= 1
                return 500, twilio_error(20500, "Internal Server Error", 500)
            number_error = state.number_errors.get(to)
        if not to:
            return 400, twilio_error(21604, "A 'To' phone number is required.", 400)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, twilio_error(21603, "A 'From' phone number is required.", 400)
        if not form.get("Body"):
            return 400, twilio_error(21602, "Message body is required.", 400)
        if not _E164.match(to):
            # As Twilio does: a national number such as 0639981001 is refused, not guessed.
            return 400, twilio_error(
                21211, f"The 'To' number {to} is not a valid phone number.", 400
            )
        if number_error is not None:
            code, message, status = number_error
            return status, twilio_error(code, message.format(to=to), status)
        return 201, self._created(form)

    def _created(self, form: dict[str, str]) -> dict[str, Any]:
        fake: FakeTwilio = self.server.fake
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC))
        service = form.get("MessagingServiceSid")
        message = {
            "account_sid": fake.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            # Twilio answers "accepted" when it still has to pick a sender from the service.
            "status": "accepted" if service and not form.get("From") else "queued",
            "sid": sid,
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json",
        }
        with self.server.state.lock:
            self.server.state.messages.append(message)
        return message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTwilio
    state: _State


class FakeTwilio:
    """Twilio's Messages API on a free port of 127.0.0.1, in a thread; ``url`` is its base URL.

    Faults apply at runtime: ``throttle_next`` (429) and ``crash_next`` (500) count down per
    request; ``mark_invalid`` numbers get 21211, ``mark_opted_out`` ones 21610, and
    ``fail_number`` sets any other error for a number.
    """

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0123456789abcdef" * 2,
        auth_token: str = "test-auth-token",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._state = _State()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._server.state = self._state
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the client, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Faults

    def throttle_next(self, count: int) -> None:
        """Answer the next ``count`` requests with 429 Too Many Requests."""
        with self._state.lock:
            self._state.throttle_next = count

    def crash_next(self, count: int) -> None:
        """Answer the next ``count`` requests with 500 Internal Server Error."""
        with self._state.lock:
            self._state.crash_next = count

    def fail_number(self, number: str, code: int, message: str, status: int = 400) -> None:
        """Answer requests to ``number`` with Twilio error ``code``; ``{to}`` is filled in."""
        with self._state.lock:
            self._state.number_errors[number] = (code, message, status)

    def mark_invalid(self, *numbers: str) -> None:
        """Answer 21211 (invalid 'To' number) for these numbers."""
        for number in numbers:
            self.fail_number(number, 21211, "The 'To' number {to} is not a valid phone number.")

    def mark_opted_out(self, *numbers: str) -> None:
        """Answer 21610 (recipient unsubscribed) for these numbers."""
        for number in numbers:
            self.fail_number(number, 21610, "Attempt to send to unsubscribed recipient")

    # Observations

    @property
    def connections(self) -> int:
        """TCP connections accepted."""
        return self._state.connections

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, in order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Messages accepted (201), as returned to the client."""
        with self._state.lock:
            return list(self._state.messages)
