"""SMTP e-mail backend: yagmail opens one session per batch, every message goes over it."""

from __future__ import annotations

import functools
import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

import yagmail

from channels.base import DeliveryResult, OutgoingEmail, ResultCallback, ResultLog
from channels.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from channels.mime import compose_email, envelope_address

__all__ = ["SmtpEmailBackend"]

logger = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]


def _text(reply: bytes | str) -> str:
    """Return an SMTP reply text as str."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, reply: bytes | str) -> DeliveryError:
    """Return the error an SMTP reply code means for the message: 5xx permanent, else transient."""
    if 500 <= code < 600:
        return PermanentDeliveryError(_text(reply), code=code)
    return TransientDeliveryError(_text(reply), code=code)


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class SmtpEmailBackend:
    """Sends each batch over one SMTP session opened by yagmail; reconnects are bounded per batch.

    Without ``open()`` each ``send_messages`` call opens and closes its own session; after
    ``open()`` (or inside ``with``) batches share it until ``close()``. Not thread-safe.
    ``connections_opened`` counts sessions for tests and benchmarks.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security,
        user: str | None,
        password: str | None,
        sender: str,
        reply_to: str | None = None,
        timeout: float = 30,
        max_reconnects: int = 3,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"security must be 'starttls', 'ssl' or 'none', not {security!r}")
        if user is not None and password is None:
            # yagmail would then ask the keyring, or prompt on stdin.
            raise ValueError("an SMTP user needs a password; pass user=None to skip login")
        self.host = host
        self.port = port
        self.security = security
        self.user = user
        self.sender = sender
        self.reply_to = reply_to
        self.timeout = timeout
        self.max_reconnects = max_reconnects
        self.clock = clock or (lambda: datetime.now(UTC))
        self.connections_opened = 0
        self._envelope_sender = envelope_address(sender)
        self._password = password
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._connection: smtplib.SMTP | None = None
        self._yag: yagmail.SMTP | None = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _client(self) -> yagmail.SMTP:
        """Return a yagmail client set up for one connect-and-login, never reading a keyring."""
        # Loading the system's CA store costs ~15 ms: only when TLS is used, once per process.
        context = (self._ssl_context or _default_tls_context()) if self.security != "none" else None
        smtplib_kwargs: dict[str, Any] = {"timeout": self.timeout}
        if self._local_hostname:
            smtplib_kwargs["local_hostname"] = self._local_hostname
        if self.security == "ssl":
            smtplib_kwargs["context"] = context
        return yagmail.SMTP(
            # The one-entry dict form keeps the login verbatim: a bare str without "@" would get
            # "@gmail.com" appended (yagmail 0.16), breaking relay logins such as "apikey".
            user={self.user or self._envelope_sender: ""},  # type: ignore[arg-type]
            password=self._password,
            host=self.host,
            port=self.port,
            smtp_ssl=self.security == "ssl",
            # smtplib's default STARTTLS context checks no certificate (Python 3.11): pass ours.
            smtp_starttls={"context": context} if self.security == "starttls" else False,
            smtp_skip_login=self.user is None,
            soft_email_validation=False,
            **smtplib_kwargs,
        )

    def open(self) -> bool:
        """Connect and log in unless open; return whether it did, or raise a transient error."""
        if self._connection is not None:
            return False
        if self._yag is None:
            self._yag = self._client()
        self.connections_opened += 1
        try:
            self._yag.login()
        except (smtplib.SMTPException, OSError) as exc:
            self._discard(getattr(self._yag, "smtp", None))
            raise self._connect_error(exc) from exc
        self._connection = self._yag.smtp
        logger.debug(
            "SMTP session %d opened to %s:%s", self.connections_opened, self.host, self.port
        )
        return True

    def close(self) -> None:
        """Quit the session if one is open, ignoring any error while doing so."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                connection.close()
        if self._yag is not None:
            # yagmail's own __del__ would otherwise try to quit the already closed session.
            self._yag.is_closed = True

    def _discard(self, connection: smtplib.SMTP | None) -> None:
        """Close a broken session's socket without talking to the server."""
        if connection is not None:
            connection.close()
        if connection is self._connection:
            self._connection = None

    def _connect_error(self, exc: BaseException) -> TransientDeliveryError:
        """Return the transient error standing for a failed connect or login."""
        if isinstance(exc, smtplib.SMTPResponseException):
            error = TransientDeliveryError(
                f"cannot open SMTP session: {_text(exc.smtp_error)}", code=exc.smtp_code
            )
        else:
            error = TransientDeliveryError(f"cannot open SMTP session: {exc!r}")
        logger.error("SMTP %s:%s: %s", self.host, self.port, error)
        return error

    def _still_alive(self) -> bool:
        """Return whether a session kept open since an earlier batch still answers."""
        assert self._connection is not None
        try:
            return self._connection.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def send_messages(
        self, messages: list[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Send ``messages`` over one session; return one result per message, in order."""
        results = ResultLog(on_result)
        owns_session = self._connection is None
        if not owns_session and not self._still_alive():
            self._discard(self._connection)
        # The first connect of a batch is free when it has no session yet; reconnects are bounded.
        opens_left = self.max_reconnects + (1 if self._connection is None else 0)
        try:
            for index, message in enumerate(messages):
                if self._connection is None:
                    if opens_left <= 0:
                        detail = f"gave up after {self.max_reconnects} reconnects in this batch"
                        results.extend(self._give_up(messages[index:], detail))
                        break
                    opens_left -= 1
                    try:
                        self.open()
                    except TransientDeliveryError as exc:
                        results.extend(self._give_up(messages[index:], exc.detail, exc.code))
                        break
                results.append(self._send_one(message))
        finally:
            if owns_session:
                self.close()
        failed = sum(not r.ok for r in results)
        logger.info("SMTP batch: %d sent, %d failed", len(results) - failed, failed)
        return results

    def _give_up(
        self, messages: list[OutgoingEmail], detail: str, code: int | None = None
    ) -> list[DeliveryResult]:
        """Return a transient failure for each message not attempted."""
        return [
            DeliveryResult(m.key, error=TransientDeliveryError(detail, code=code)) for m in messages
        ]

    def _send_one(self, message: OutgoingEmail) -> DeliveryResult:
        """Send one message over the open session and map whatever happens to a result."""
        assert self._connection is not None
        try:
            recipient = envelope_address(message.to)
            raw = compose_email(
                message, sender=self.sender, reply_to=self.reply_to, date=self.clock()
            )
        except ValueError as exc:
            return self._failed(message, PermanentDeliveryError(f"cannot compose: {exc}"))
        try:
            refused = self._connection.sendmail(self._envelope_sender, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, next(iter(exc.recipients.values())))
            if code == 421:
                self._discard(self._connection)
            return self._failed(message, _by_code(code, reply))
        except smtplib.SMTPSenderRefused as exc:
            # MAIL FROM refused is about our account or sender address, not this recipient:
            # never let it mark the recipient as permanently undeliverable.
            if exc.smtp_code == 421:
                self._discard(self._connection)
            return self._failed(
                message, TransientDeliveryError(_text(exc.smtp_error), code=exc.smtp_code)
            )
        except smtplib.SMTPHeloError as exc:
            # A refused greeting says nothing about the recipient: start afresh.
            self._discard(self._connection)
            return self._failed(
                message, TransientDeliveryError(_text(exc.smtp_error), code=exc.smtp_code)
            )
        except smtplib.SMTPResponseException as exc:  # SMTPDataError and the like
            if exc.smtp_code == 421:
                self._discard(self._connection)
            return self._failed(message, _by_code(exc.smtp_code, exc.smtp_error))
        except smtplib.SMTPServerDisconnected as exc:
            # The server may or may not have taken the message: report it transient (the outbox
            # retries it later) and carry on with the rest after a reconnect.
            self._discard(self._connection)
            return self._failed(message, TransientDeliveryError(f"connection lost: {exc}"))
        except smtplib.SMTPException as exc:  # e.g. SMTPNotSupportedError; the session is fine
            return self._failed(message, TransientDeliveryError(f"SMTP error: {exc!r}"))
        except OSError as exc:  # timeout, reset, TLS error: the session cannot be trusted
            self._discard(self._connection)
            return self._failed(message, TransientDeliveryError(f"connection lost: {exc!r}"))
        if recipient in refused:  # unreachable with one recipient, kept for safety
            code, reply = refused[recipient]
            return self._failed(message, _by_code(code, reply))
        return DeliveryResult(message.key, provider_id=message.message_id)

    def _failed(self, message: OutgoingEmail, error: DeliveryError) -> DeliveryResult:
        """Log and return a failed result for ``message``."""
        logger.warning("e-mail %s to %s not sent: %s", message.key, message.to, error)
        return DeliveryResult(message.key, error=error)
