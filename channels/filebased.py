"""File backends: one .eml or .sms file per message in a directory, each written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from channels.base import DeliveryResult, OutgoingEmail, OutgoingSms, ResultCallback, ResultLog
from channels.errors import DeliveryError, TransientDeliveryError
from channels.mime import compose_for_delivery, single_line

__all__ = ["FileEmailBackend", "FileSmsBackend", "file_name_for"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name_for(key: str, suffix: str) -> str:
    """Return a safe, stable file name for an outbox key: a readable slug plus a hash of the key."""
    # The slug alone could collide ("a/b" and "a:b") or be empty: the hash keeps names unique.
    slug = _UNSAFE.sub("_", key).strip("._")[:80] or "message"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}{suffix}"


def write_atomically(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` via a hidden temp file and os.replace: never half a file."""
    # Without fsync this survives a crash of the process, not a power cut; fsync costs a disk
    # flush per file, hence optional.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class FileEmailBackend:
    """Writes each e-mail as ``<slug>-<hash>.eml`` in ``directory``, openable in any mail client.

    The same key always maps to the same file, so a message sent twice is written once.
    """

    def __init__(
        self,
        *,
        directory: Path,
        sender: str,
        reply_to: str | None = None,
        fsync: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.reply_to = reply_to
        self.fsync = fsync
        self.clock = clock or (lambda: datetime.now(UTC))

    def path_for(self, message: OutgoingEmail) -> Path:
        """Return the file ``message`` is (or would be) written to."""
        return self.directory / file_name_for(message.key, ".eml")

    def send_messages(
        self, messages: Iterable[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Write one .eml per message; return one result per message, in order."""
        self.directory.mkdir(parents=True, exist_ok=True)
        results = ResultLog(on_result)
        for message in messages:
            try:
                _, raw = compose_for_delivery(
                    message, sender=self.sender, reply_to=self.reply_to, date=self.clock()
                )
            except DeliveryError as refused:
                logger.warning("e-mail %s not written: %s", message.key, refused)
                results.append(DeliveryResult(message.key, error=refused))
                continue
            try:
                write_atomically(self.path_for(message), raw, fsync=self.fsync)
            except OSError as exc:  # disk full, permissions: worth another try later
                logger.warning("e-mail %s not written: %r", message.key, exc)
                error = TransientDeliveryError(f"cannot write file: {exc}")
                results.append(DeliveryResult(message.key, error=error))
                continue
            results.append(DeliveryResult(message.key, provider_id=message.message_id))
        logger.info("wrote %d e-mails to %s", sum(r.ok for r in results), self.directory)
        return results


class FileSmsBackend:
    """Writes each SMS as ``<slug>-<hash>.sms``: From/To/Date/Key/Id lines, blank line, body."""

    def __init__(
        self,
        *,
        directory: Path,
        sender: str,
        fsync: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.sender = sender
        self.fsync = fsync
        self.clock = clock or (lambda: datetime.now(UTC))

    def path_for(self, message: OutgoingSms) -> Path:
        """Return the file ``message`` is (or would be) written to."""
        return self.directory / file_name_for(message.key, ".sms")

    def render(self, message: OutgoingSms, provider_id: str) -> bytes:
        """Return the UTF-8 text written for ``message``."""
        headers = {
            "From": self.sender,
            "To": message.to,
            "Date": self.clock().isoformat(),
            "Key": message.key,
            "Id": provider_id,
        }
        head = "".join(f"{name}: {single_line(value)}\n" for name, value in headers.items())
        return f"{head}\n{message.body}".encode()

    def send_messages(
        self, messages: Iterable[OutgoingSms], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Write one .sms per message; return one result per message, in order."""
        self.directory.mkdir(parents=True, exist_ok=True)
        results = ResultLog(on_result)
        for message in messages:
            provider_id = f"file-{uuid.uuid4().hex}"
            try:
                write_atomically(
                    self.path_for(message), self.render(message, provider_id), fsync=self.fsync
                )
            except OSError as exc:
                logger.warning("SMS %s not written: %r", message.key, exc)
                error = TransientDeliveryError(f"cannot write file: {exc}")
                results.append(DeliveryResult(message.key, error=error))
                continue
            results.append(DeliveryResult(message.key, provider_id=provider_id))
        logger.info("wrote %d SMS to %s", sum(r.ok for r in results), self.directory)
        return results
