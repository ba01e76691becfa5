"""SMTP e-mail backend: yagmail opens one session per batch, every message goes over it, pipelined."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

import yagmail

from channels.base import DeliveryResult, OutgoingEmail, ResultCallback, ResultLog
from channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    SenderSideError,
    TransientDeliveryError,
)
from channels.mime import compose_for_delivery, envelope_address

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


# RCPT answers that are about us, not the address: the relay will not relay for us, or it
# refuses our sender, our host or our lack of login (Postfix, Exim, Exchange, sendmail wordings;
# RFC 3463 X.1.7 and X.1.8 are "bad sender"). A recipient named in a relay's table ("User
# unknown in relay recipient table") is about the recipient and does not match.
_REFUSES_US = re.compile(
    r"relay(?:ing)? (?:access )?(?:denied|not (?:permitted|allowed)|prohibited)|relay access"
    r"|unable to relay|do(?:es)? not relay|sender address rejected|client host rejected"
    r"|authentication required|must (?:first )?authenticate|not authenticated"
    r"|\b5\.1\.[78]\b|\b5\.7\.0\b",
    re.IGNORECASE,
)


def _rcpt_error(code: int, reply: bytes | str) -> DeliveryError:
    """Return what a refused RCPT means: about us (SenderSideError) or about this address."""
    text = _text(reply)
    if 500 <= code < 600 and _REFUSES_US.search(text):
        return SenderSideError(f"the relay refuses us: {text}", code=code)
    return _by_code(code, reply)


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
        """Connect and log in unless open; return whether it did.

        Raises TransientDeliveryError when the relay cannot be reached or is busy, and
        SenderSideError when it refuses us (login, 5xx greeting, TLS certificate, no AUTH).
        """
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

    def _connect_error(self, exc: BaseException) -> DeliveryError:
        """Return the error standing for a failed connect or login: ours to fix, or transient."""
        error: DeliveryError
        if isinstance(exc, smtplib.SMTPResponseException):
            detail = f"cannot open SMTP session: {_text(exc.smtp_error)}"
            # 535 bad login, 554 "go away", 530 TLS first: waiting will not help, we must act.
            kind = SenderSideError if 500 <= exc.smtp_code < 600 else TransientDeliveryError
            error = kind(detail, code=exc.smtp_code)
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            error = TransientDeliveryError(f"cannot open SMTP session: {exc!r}")
        elif isinstance(exc, smtplib.SMTPException | ssl.SSLCertVerificationError):
            # No AUTH or STARTTLS offered, no usable AUTH method, a certificate we do not
            # trust: the settings do not match this server.
            error = SenderSideError(f"cannot open SMTP session: {exc}")
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
        self, messages: Iterable[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Send ``messages`` over one session; return one result per message, in order.

        Pipelined, without threads: message k's result goes to ``on_result`` while the
        server reads message k+1's MAIL FROM (never after k+1's data is complete, so at
        most one message is ever accepted and unrecorded), and message k+1 is read from
        ``messages`` and composed while the server digests message k's data.
        """
        results = ResultLog(on_result)
        owns_session = self._connection is None
        if not owns_session and not self._still_alive():
            self._discard(self._connection)
        # The first connect of a batch is free when it has no session yet. Reconnects in a row
        # without a message getting through are bounded: a relay that hangs up every n
        # messages is followed, a dead one is given up on.
        opens_left = self.max_reconnects + (1 if self._connection is None else 0)
        upcoming = _Upcoming(messages, self._prepare)
        try:
            while (item := upcoming.take()) is not None:
                if isinstance(item, DeliveryResult):  # could not be composed
                    results.append(item)
                    continue
                if self._connection is None:
                    if opens_left <= 0:
                        detail = f"gave up after {self.max_reconnects} reconnects in a row"
                        results.extend(
                            self._give_up(item, upcoming, TransientDeliveryError(detail))
                        )
                        break
                    opens_left -= 1
                    try:
                        self.open()
                    except DeliveryError as exc:
                        results.extend(self._give_up(item, upcoming, exc))
                        break
                result = self._send_one(item, results.release, results.settle, upcoming.prefetch)
                if result.ok:
                    opens_left = self.max_reconnects
                results.hold(result)
        finally:
            try:
                results.release()
                results.settle()
            finally:
                if owns_session:
                    self.close()
        failed = sum(not r.ok for r in results)
        logger.info("SMTP batch: %d sent, %d failed", len(results) - failed, failed)
        return results

    def _give_up(
        self, first: _Prepared, upcoming: _Upcoming, error: DeliveryError
    ) -> list[DeliveryResult]:
        """Return ``error`` (transient or ours) for ``first`` and each message not attempted after it."""
        keys = [first.message.key]
        while (item := upcoming.take()) is not None:
            keys.append(item.key if isinstance(item, DeliveryResult) else item.message.key)
        kind = type(error) if isinstance(error, SenderSideError) else TransientDeliveryError
        return [DeliveryResult(key, error=kind(error.detail, code=error.code)) for key in keys]

    def probe(self) -> None:
        """Open a session as a batch would and try MAIL FROM (then RSET): raise if the relay refuses us.

        Nothing is sent. Raises SenderSideError (login, sender or relay refused: settings to
        fix) or TransientDeliveryError (the relay cannot be reached now).
        """
        opened = self.open()
        try:
            connection = self._connection
            assert connection is not None
            try:
                connection.ehlo_or_helo_if_needed()
                code, reply = connection.mail(self._envelope_sender)
                if code != 250:
                    kind = SenderSideError if 500 <= code < 600 else TransientDeliveryError
                    raise kind(f"MAIL FROM refused: {_text(reply)}", code=code)
                connection.rset()
            except (smtplib.SMTPException, OSError) as exc:
                self._discard(connection)
                raise TransientDeliveryError(f"SMTP session lost: {exc!r}") from exc
        finally:
            if opened:
                self.close()

    def _prepare(self, message: OutgoingEmail) -> _Prepared | DeliveryResult:
        """The envelope recipient and bytes of ``message``, or its failed result if unsendable."""
        try:
            recipient, raw = compose_for_delivery(
                message, sender=self.sender, reply_to=self.reply_to, date=self.clock()
            )
        except DeliveryError as error:
            return self._failed(message, error)
        return _Prepared(message, recipient, _data_payload(raw))

    def _transact(
        self,
        prepared: _Prepared,
        mail_sent: Callable[[], None],
        settle: Callable[[], None],
        digesting: Callable[[], None],
    ) -> None:
        """One SMTP transaction, as ``smtplib.SMTP.sendmail`` does it, raising the same errors.

        ``mail_sent`` runs once MAIL FROM is on its way, ``digesting`` once the data is:
        both use time the client would otherwise spend waiting for the server. ``settle``
        runs just before the data is: the server cannot accept this message before it.
        """
        connection = self._connection
        assert connection is not None
        connection.ehlo_or_helo_if_needed()
        options = f" SIZE={len(prepared.payload)}" if connection.has_extn("size") else ""
        # Both addresses are checked addr-specs already (envelope_address): no quoteaddr.
        connection.putcmd("mail", f"FROM:<{self._envelope_sender}>{options}")
        mail_sent()
        code, reply = connection.getreply()
        if code != 250:
            self._abandon(connection, code)
            raise smtplib.SMTPSenderRefused(code, reply, self._envelope_sender)
        connection.putcmd("rcpt", f"TO:<{prepared.recipient}>")
        code, reply = connection.getreply()
        if code not in (250, 251):
            self._abandon(connection, code)
            raise smtplib.SMTPRecipientsRefused({prepared.recipient: (code, reply)})
        connection.putcmd("data")
        code, reply = connection.getreply()
        if code != 354:
            self._abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)
        settle()
        connection.send(prepared.payload)
        digesting()
        code, reply = connection.getreply()
        if code != 250:
            self._abandon(connection, code)
            raise smtplib.SMTPDataError(code, reply)

    @staticmethod
    def _abandon(connection: smtplib.SMTP, code: int) -> None:
        """End a refused transaction as sendmail does: close on 421, else RSET."""
        if code == 421:
            connection.close()
            return
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            connection.rset()

    def _send_one(
        self,
        prepared: _Prepared,
        mail_sent: Callable[[], None],
        settle: Callable[[], None],
        digesting: Callable[[], None],
    ) -> DeliveryResult:
        """Send one message over the open session and map whatever happens to a result.

        ``mail_sent``, ``settle`` and ``digesting`` run, in that order, even when the
        transaction fails (the first two are no-ops when they already ran).
        """
        message, recipient = prepared.message, prepared.recipient
        try:
            self._transact(prepared, mail_sent, settle, digesting)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, next(iter(exc.recipients.values())))
            if code == 421:
                self._discard(self._connection)
            return self._failed(message, _rcpt_error(code, reply))
        except smtplib.SMTPSenderRefused as exc:
            # MAIL FROM refused is about our account or sender address, not this recipient:
            # never let it mark the recipient as permanently undeliverable. 5xx: the relay
            # will go on refusing until we fix something, so the run stops.
            if exc.smtp_code == 421:
                self._discard(self._connection)
            kind = SenderSideError if 500 <= exc.smtp_code < 600 else TransientDeliveryError
            return self._failed(message, kind(_text(exc.smtp_error), code=exc.smtp_code))
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
        finally:
            mail_sent()  # no-ops when they already ran
            settle()
            digesting()
        return DeliveryResult(message.key, provider_id=message.message_id)

    def _failed(self, message: OutgoingEmail, error: DeliveryError) -> DeliveryResult:
        """Log and return a failed result for ``message``."""
        logger.warning("e-mail %s to %s not sent: %s", message.key, message.to, error)
        return DeliveryResult(message.key, error=error)


def _data_payload(raw: bytes) -> bytes:
    """``raw`` as sent after DATA: dots doubled, ending with CRLF "." CRLF."""
    # A line holding only "." ends the data: a dot starting a line is doubled (RFC 5321,
    # 4.5.2). bytes.replace rather than a multiline regex, which took as long as composing.
    quoted = raw.replace(b"\n.", b"\n..")
    if quoted.startswith(b"."):
        quoted = b"." + quoted
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A message ready for the wire: its envelope recipient and DATA payload."""

    message: OutgoingEmail
    recipient: str
    payload: bytes


class _Upcoming:
    """The messages of a batch, each prepared one step ahead when the sender has time.

    ``prefetch`` prepares the next message now (a no-op if it is ready); ``take`` returns
    it, or None at the end. An error raised by the ``messages`` iterable (a template that
    fails to render, say) is kept and raised by ``take``, so the message on the wire is
    first finished and recorded.
    """

    def __init__(
        self,
        messages: Iterable[OutgoingEmail],
        prepare: Callable[[OutgoingEmail], _Prepared | DeliveryResult],
    ) -> None:
        self._messages = iter(messages)
        self._prepare = prepare
        self._ready = False
        self._next: _Prepared | DeliveryResult | None = None
        self._error: BaseException | None = None

    def prefetch(self) -> None:
        if self._ready:
            return
        self._ready = True
        try:
            message = next(self._messages, None)
        except Exception as exc:  # noqa: BLE001 (raised again by take)
            self._error = exc
            return
        self._next = None if message is None else self._prepare(message)

    def take(self) -> _Prepared | DeliveryResult | None:
        self.prefetch()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        item, self._next, self._ready = self._next, None, False
        return item
