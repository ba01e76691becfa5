"""A real aiosmtpd SMTP server on 127.0.0.1 that records what it receives and fails on demand."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from channels.smtp import SmtpEmailBackend

__all__ = ["ReceivedMessage", "SmtpTestServer"]

logger = logging.getLogger(__name__)

_HOSTNAME = "smtp.test.invalid"  # fixed, so aiosmtpd never waits on socket.getfqdn()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago on ``host``."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a throw-away certificate for localhost and 127.0.0.1; return (cert, key) paths."""
    # Imported here: only TLS tests need cryptography (a dependency of prefect, not ours).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())  # EC: generated in a millisecond
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted: envelope, Message-ID and the raw DATA bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    raw: bytes

    def parsed(self) -> Message:
        """Return the message parsed by the stdlib e-mail parser."""
        return message_from_bytes(self.raw)


@dataclass
class _State:
    """Counters, records and pending faults, shared between the test thread and the server loop."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    ehlo: int = 0
    helo: int = 0
    logins: list[str] = field(default_factory=list)
    messages: list[ReceivedMessage] = field(default_factory=list)
    accepted: int = 0
    refuse_connections: int = 0
    refuse_reply: str = "421 4.3.2 Service not available, closing channel"
    rcpt_replies: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    every_rcpt_reply: str | None = None
    mail_reply: str | None = None
    refuse_logins: bool = False
    drop_message_ids: set[str] = field(default_factory=set)
    drop_next_messages: int = 0
    dropped: int = 0
    # Greetings wait until this many connections have arrived (0: nobody waits).
    greeting_parties: int = 0
    arrived: int = 0
    # Called in the server's thread as each message is accepted, before the client hears it.
    on_accept: Callable[[ReceivedMessage], None] | None = None

    def clear(self) -> None:
        """Reset everything but the lock, which both threads keep using."""
        fresh = _State()
        for item in fields(self):
            if item.name != "lock":
                setattr(self, item.name, getattr(fresh, item.name))


class _FaultySMTP(SMTP):
    """aiosmtpd's SMTP session, able to greet with a refusal when asked to."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._faults = handler.state

    async def _handle_client(self) -> None:
        # aiosmtpd 1.4 has no hook at connect time; this is where it sends its 220 greeting.
        with self._faults.lock:
            self._faults.connections += 1
            self._faults.arrived += 1
            refuse = self._faults.refuse_connections > 0
            if refuse:
                self._faults.refuse_connections -= 1
            reply = self._faults.refuse_reply
        while self._faults.arrived < self._faults.greeting_parties:
            await asyncio.sleep(0.01)  # the other sessions go on meanwhile
        if refuse:
            await self.push(reply)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _Handler:
    """aiosmtpd handler hooks: count greetings, refuse chosen recipients, record or drop DATA."""

    def __init__(self, state: _State, keep_raw: bool, auth_required: bool) -> None:
        self.state = state
        self.keep_raw = keep_raw
        self.auth_required = auth_required

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a 5-argument hook
        with self.state.lock:
            self.state.ehlo += 1
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        with self.state.lock:
            self.state.helo += 1
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        with self.state.lock:
            refusal = self.state.mail_reply
        if refusal is not None:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.state.lock:
            if self.state.every_rcpt_reply is not None:
                return self.state.every_rcpt_reply
            planned = self.state.rcpt_replies.get(address.lower())
            if planned is not None:
                reply, times = planned
                if times is not None:  # a fault for the next few tries only
                    if times <= 1:
                        del self.state.rcpt_replies[address.lower()]
                    else:
                        self.state.rcpt_replies[address.lower()] = (reply, times - 1)
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message_id = BytesHeaderParser().parsebytes(raw).get("Message-ID")
        with self.state.lock:
            drop = message_id in self.state.drop_message_ids or self.state.drop_next_messages > 0
            if drop:
                self.state.drop_message_ids.discard(message_id or "")
                self.state.drop_next_messages = max(0, self.state.drop_next_messages - 1)
                self.state.dropped += 1
            else:
                self.state.accepted += 1
                received = ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    message_id=message_id,
                    raw=raw if self.keep_raw else b"",
                )
                self.state.messages.append(received)
            watcher = self.state.on_accept
        if not drop and watcher is not None:
            watcher(received)
        if drop:
            # Hang up before the final reply: the client cannot know whether the message got in.
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 dropped by the test server"  # never reaches the client
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """A threaded Controller whose sessions can refuse connections."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._faulty_handler = handler

    def factory(self) -> SMTP:
        return _FaultySMTP(self._faulty_handler, **self.SMTP_kwargs)


class SmtpTestServer:
    """An SMTP server on ``host``:``port`` (a free port by default) running in a thread.

    Faults apply at runtime: ``refuse_next_connections(n)`` greets with 421; ``reply_to_rcpt``
    answers RCPT for an address with a chosen reply (e.g. 451 or 550), ``refuse_every_rcpt``
    every RCPT ("550 relay denied"); ``refuse_mail_from`` answers MAIL FROM with a chosen
    refusal; ``refuse_logins`` fails AUTH even with the right password; ``drop_during_data``
    hangs up after DATA for chosen Message-IDs or for the next n messages. With ``credentials``
    the server advertises AUTH (even without TLS) and requires it. ``tls="starttls"`` requires
    STARTTLS and ``tls="ssl"`` speaks TLS from the first byte, with a self-signed certificate
    for 127.0.0.1 that clients can trust through ``certificate`` (a PEM file).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: tuple[str, str] | None = None,
        tls: Literal["none", "starttls", "ssl"] = "none",
        keep_raw: bool = True,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.credentials = credentials
        self.certificate: Path | None = None
        self._state = _State()
        self._tls_dir: Path | None = None
        kwargs: dict[str, Any] = {"server_hostname": _HOSTNAME, "ready_timeout": 10.0}
        if tls != "none":
            self._tls_dir = Path(tempfile.mkdtemp(prefix="smtp-test-tls-"))
            self.certificate, key = write_self_signed_certificate(self._tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificate, key)
            if tls == "ssl":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            # AUTH is required by handle_MAIL rather than aiosmtpd's auth_required, which warns
            # about AUTH without TLS on every connection.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = _Controller(
            _Handler(self._state, keep_raw, auth_required=credentials is not None),
            hostname=host,
            port=self.port,
            **kwargs,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept exactly the configured login and password, and remember who tried."""
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        with self._state.lock:
            self._state.logins.append(login)
            refuse = self._state.refuse_logins
        # handled=False: let aiosmtpd answer 535 itself (its default, True, answers nothing).
        return AuthResult(
            success=not refuse and (login, password) == self.credentials, handled=False
        )

    def start(self) -> Self:
        """Start serving, then forget the connection the controller makes to check it is up."""
        self._controller.start()
        self.reset()
        return self

    def stop(self) -> None:
        """Stop serving and delete the certificate, if any."""
        self._controller.stop()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget counters, records and pending faults."""
        with self._state.lock:
            self._state.clear()

    # Faults

    def refuse_next_connections(self, count: int, reply: str | None = None) -> None:
        """Greet the next ``count`` connections with ``reply`` (421 by default) and hang up."""
        with self._state.lock:
            self._state.refuse_connections = count
            if reply is not None:
                self._state.refuse_reply = reply

    def reply_to_rcpt(self, address: str, reply: str, *, times: int | None = None) -> None:
        """Answer ``RCPT TO:<address>`` with ``reply`` (e.g. ``"550 5.1.1 No such user"``), always or ``times`` times."""
        with self._state.lock:
            self._state.rcpt_replies[address.lower()] = (reply, times)

    def refuse_mail_from(self, reply: str | None = "550 5.7.1 Sender not allowed") -> None:
        """Answer every ``MAIL FROM`` with ``reply`` (None: accept again)."""
        with self._state.lock:
            self._state.mail_reply = reply

    def refuse_every_rcpt(self, reply: str | None = "550 5.7.1 Relaying denied") -> None:
        """Answer every ``RCPT TO`` with ``reply``, whoever the recipient (None: accept again)."""
        with self._state.lock:
            self._state.every_rcpt_reply = reply

    def refuse_logins(self, refuse: bool = True) -> None:
        """Answer AUTH with 535 even for the right credentials (a revoked or expired login)."""
        with self._state.lock:
            self._state.refuse_logins = refuse

    def drop_during_data(self, *message_ids: str, next_messages: int = 0) -> None:
        """Hang up after DATA, before replying, for these Message-IDs and the next n messages."""
        with self._state.lock:
            self._state.drop_message_ids.update(message_ids)
            self._state.drop_next_messages += next_messages

    def greet_together(self, parties: int) -> None:
        """Hold the greeting of the next connections until ``parties`` of them have arrived.

        A barrier for clients started at different moments (two processes, say): none of
        them can say EHLO before the last one has connected. Later connections pass at once.
        """
        with self._state.lock:
            self._state.greeting_parties = self._state.arrived + parties

    def client(self, *, sender: str, **overrides: Any) -> SmtpEmailBackend:
        """An SMTP backend pointed at this server: no TLS, no login, 5 s timeout unless overridden."""
        options: dict[str, Any] = {"host": self.host, "port": self.port, "security": "none", "user": None,
                                   "password": None, "timeout": 5, **overrides}  # fmt: skip
        return SmtpEmailBackend(sender=sender, **options)

    def watch_acceptances(self, callback: Callable[[ReceivedMessage], None] | None) -> None:
        """Call ``callback`` in the server's thread as each message is accepted, before the 250."""
        with self._state.lock:
            self._state.on_accept = callback

    # Observations

    @property
    def connections(self) -> int:
        """Connections accepted (refused ones included)."""
        return self._state.connections

    @property
    def ehlo_count(self) -> int:
        """EHLO commands received."""
        return self._state.ehlo

    @property
    def helo_count(self) -> int:
        """HELO commands received."""
        return self._state.helo

    @property
    def logins(self) -> list[str]:
        """User names that tried to authenticate."""
        with self._state.lock:
            return list(self._state.logins)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far, in order."""
        with self._state.lock:
            return list(self._state.messages)

    def stats(self) -> dict[str, int]:
        """Return the counters as a JSON-friendly dict."""
        with self._state.lock:
            return {
                "connections": self._state.connections,
                "ehlo": self._state.ehlo,
                "helo": self._state.helo,
                "accepted": self._state.accepted,
                "dropped": self._state.dropped,
                "unique_message_ids": len({m.message_id for m in self._state.messages}),
            }


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then print the counters as JSON (and write them to a file)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--stats-file", type=Path, help="where to write the counters on exit")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = SmtpTestServer(args.host, args.port, keep_raw=False).start()
    # The one line a parent process waits for before sending.
    sys.stdout.write(json.dumps({"host": server.host, "port": server.port}) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        stats = json.dumps(server.stats())
        if args.stats_file is not None:
            tmp = args.stats_file.with_suffix(".tmp")
            tmp.write_text(stats + "\n")
            tmp.replace(args.stats_file)
        sys.stdout.write(stats + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
