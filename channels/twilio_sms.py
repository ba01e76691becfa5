"""Twilio SMS backend: one twilio Client (one HTTP keep-alive session) per batch."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from channels.base import DeliveryResult, OutgoingSms, ResultCallback, ResultLog
from channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RecipientOptedOutError,
    SenderSideError,
    TransientDeliveryError,
)

__all__ = ["NOT_THE_RECIPIENTS_FAULT", "OPTED_OUT", "OUR_SETUP", "TwilioSmsBackend", "error_for"]

logger = logging.getLogger(__name__)

# https://www.twilio.com/docs/errors/21610: the recipient replied STOP to this sender.
OPTED_OUT = 21610
# 4xx codes that are no fault of the recipient and pass: the sender's queue is full (21611),
# or the destination country is not enabled on our account (21408, one country, not the run).
# Failing the recipient for good would lose them; retried later.
# Twilio advises against much logic on codes, so these lists stay short.
NOT_THE_RECIPIENTS_FAULT = frozenset({21408, 21611})
# Our account or sender is wrong for every message: bad credentials (20003, HTTP 401), our
# 'From' is invalid or cannot send SMS (21212, 21606). The run stops; nobody is marked.
OUR_SETUP = frozenset({20003, 21212, 21606})


class _BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, sending every request to ``base_url`` instead of twilio.com.

    A custom HTTP client is the library's documented extension point; the path (with the
    account SID) is kept and only scheme, host and port change, whatever edge or region the
    client would have chosen, so nothing can leak to the real API.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._prefix = parts.path.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        url = urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )
        return super().request(method, url, *args, **kwargs)


def error_for(exc: TwilioRestException | TwilioServiceException) -> DeliveryError:
    """Return what a Twilio API error means for one message.

    429 and 5xx are transient, 21610 (unsubscribed) is RecipientOptedOutError, any other 4xx
    (21211 invalid 'To', 21614 not a mobile, ...) is permanent, except 401 and the codes in
    OUR_SETUP (wrong credentials or sender: SenderSideError, ours to fix, the run stops) and
    in NOT_THE_RECIPIENTS_FAULT (transient).
    """
    status = int(exc.status)
    code = int(exc.code) if exc.code is not None else status
    if isinstance(exc, TwilioServiceException):
        detail = " - ".join(part for part in (exc.title, exc.detail) if part)
    else:
        detail = str(exc.msg)
    if status == 401 or code in OUR_SETUP:
        return SenderSideError(detail, code=code)
    if status == 429 or status >= 500 or code in NOT_THE_RECIPIENTS_FAULT:
        return TransientDeliveryError(detail, code=code)
    if code == OPTED_OUT:
        return RecipientOptedOutError(detail, code=code)
    if 400 <= status < 500:
        return PermanentDeliveryError(detail, code=code)
    return TransientDeliveryError(detail, code=code)


class TwilioSmsBackend:
    """Sends SMS through Twilio's Messages API, from a number, an alphanumeric ID or a service.

    ``sender`` starting with "MG" is a Messaging Service SID. ``api_url`` points the real
    client elsewhere (a local fake in tests). The process environment is never read: region
    and edge are arguments. After ``max_connection_failures`` network errors in a row, the
    rest of the batch is failed as transient instead of waiting on each timeout; after a 401
    the rest is failed at once, since every request would be refused the same way.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        api_url: str | None = None,
        timeout: float = 15.0,
        region: str | None = None,
        edge: str | None = None,
        max_connection_failures: int = 3,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs both an account SID and an auth token")
        if not sender:
            raise ValueError("Twilio needs a sender: a phone number, an ID or an MG... SID")
        if api_url is not None and (
            urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).netloc
        ):
            raise ValueError(f"api_url must be an http(s) URL, not {api_url!r}")
        self.account_sid = account_sid
        self.sender = sender
        self.api_url = api_url
        self.timeout = timeout
        self.region = region
        self.edge = edge
        self.max_connection_failures = max_connection_failures
        self.clients_created = 0
        self._auth_token = auth_token

    def _client(self) -> Client:
        """Return a new Client whose HTTP session lives for one batch."""
        http_client: TwilioHttpClient
        if self.api_url:
            http_client = _BaseUrlHttpClient(self.api_url, timeout=self.timeout)
        else:
            http_client = TwilioHttpClient(timeout=self.timeout)
        self.clients_created += 1
        return Client(
            self.account_sid,
            self._auth_token,
            region=self.region,
            edge=self.edge,
            http_client=http_client,
            # Non-empty on purpose: an empty mapping makes twilio fall back to os.environ, where
            # TWILIO_EDGE or TWILIO_REGION would silently change the host we talk to.
            environment={"TWILIO_ACCOUNT_SID": self.account_sid},
        )

    def _create(self, client: Client, message: OutgoingSms) -> str:
        """Send one SMS and return its SID."""
        if self.sender.startswith("MG"):
            created = client.messages.create(
                to=message.to, body=message.body, messaging_service_sid=self.sender
            )
        else:
            created = client.messages.create(to=message.to, body=message.body, from_=self.sender)
        return str(created.sid)

    def send_messages(
        self, messages: Iterable[OutgoingSms], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Send ``messages`` with one client; return one result per message, in order."""
        results = ResultLog(on_result)
        pending = iter(messages)  # read one at a time: the outbox checks its lease as they go
        client = self._client()
        failures_in_a_row = 0
        try:
            for message in pending:
                try:
                    sid = self._create(client, message)
                except (TwilioRestException, TwilioServiceException) as exc:
                    error = error_for(exc)
                    results.append(self._failed(message, error))
                    if int(exc.status) == 401:
                        logger.error("Twilio refused our credentials: check the auth token")
                        results.extend(self._give_up(pending, error))
                        break
                    continue
                except (requests.RequestException, TwilioException) as exc:
                    # Timeouts, refused connections, unreadable answers: the SMS may or may not
                    # have been accepted; transient, so the outbox decides about retrying.
                    error = TransientDeliveryError(f"Twilio unreachable: {exc!r}")
                    results.append(self._failed(message, error))
                    failures_in_a_row += 1
                    if failures_in_a_row >= self.max_connection_failures:
                        logger.error("Twilio unreachable %d times in a row", failures_in_a_row)
                        results.extend(self._give_up(pending, error))
                        break
                    continue
                failures_in_a_row = 0
                results.append(DeliveryResult(message.key, provider_id=sid))
        finally:
            session = getattr(client.http_client, "session", None)
            if session is not None:
                session.close()
        failed = sum(not r.ok for r in results)
        logger.info("Twilio batch: %d sent, %d failed", len(results) - failed, failed)
        return results

    def _give_up(
        self, messages: Iterable[OutgoingSms], error: DeliveryError
    ) -> list[DeliveryResult]:
        """Return a failure like ``error`` (ours, or else transient) for each message not attempted."""
        detail = f"not attempted: {error.detail}"
        kind = SenderSideError if isinstance(error, SenderSideError) else TransientDeliveryError
        return [DeliveryResult(m.key, error=kind(detail, code=error.code)) for m in messages]

    def _failed(self, message: OutgoingSms, error: DeliveryError) -> DeliveryResult:
        """Log and return a failed result for ``message``."""
        logger.warning("SMS %s not sent: %s", message.key, error)
        return DeliveryResult(message.key, error=error)
