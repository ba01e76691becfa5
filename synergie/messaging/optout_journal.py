"""The opt-out journal: a portal or one-click opt-out is written to a file first, then to the database.

An RFC 8058 one-click POST is never retried by the mail provider: if the database is
busy (an import holds its write lock for the whole file) the request must not wait for
it, nor be lost. The portal appends the request to ``pending.jsonl`` in the data dir
(one JSON line, fsync'd) before anything else, answers, and the request is applied to
the database as soon as it is free: by the portal at once or in the background, or by
the next run that selects or claims messages. Applying goes through
``synergie.messaging.optouts`` and is idempotent: an entry applied twice changes nothing.

    pending.jsonl ──take (rename)──▶ applying-<id>.jsonl ──applied, committed──▶ applied.jsonl
                                      (left there if the database refused: taken again next time)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session, select

from models.db import write_transaction
from models.enums import Channel
from models.tables import Contact
from synergie.messaging.optouts import opt_out, opt_out_company
from synergie.settings import Settings

__all__ = [
    "AppliedOptOut",
    "OptOutJournal",
    "OptOutRequest",
    "apply_opt_out_requests",
    "apply_pending_opt_outs",
    "journal_for",
]

logger = logging.getLogger(__name__)

JOURNAL_DIR = "desinscriptions"
Scope = Literal["channel", "all"]


@dataclass(frozen=True, slots=True)
class OptOutRequest:
    """One opt-out as the person asked for it, at the moment they asked."""

    id: str
    public_id: str
    channel: Channel
    scope: Scope
    source: str
    at: datetime

    @classmethod
    def new(
        cls, *, public_id: str, channel: Channel, scope: Scope, source: str, at: datetime
    ) -> OptOutRequest:
        """A request with a fresh id."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        return cls(uuid.uuid4().hex, public_id, Channel(channel), scope, source, at)

    def to_line(self) -> bytes:
        """The request as one JSON line."""
        fields = {"id": self.id, "public_id": self.public_id, "channel": self.channel.value,
                  "scope": self.scope, "source": self.source, "at": self.at.isoformat()}  # fmt: skip
        return json.dumps(fields, ensure_ascii=True).encode("ascii") + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> OptOutRequest:
        """The request a JSON line holds; ValueError if it is not one."""
        try:
            data = json.loads(line)
            at = datetime.fromisoformat(data["at"])
            scope = data["scope"]
            if scope not in ("channel", "all") or at.tzinfo is None:
                raise ValueError(f"not an opt-out request: {line[:200]!r}")
            return cls(str(data["id"]), str(data["public_id"]), Channel(data["channel"]), scope,
                       str(data["source"]), at)  # fmt: skip
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an opt-out request: {line[:200]!r}") from exc


@dataclass(frozen=True, slots=True)
class AppliedOptOut:
    """What applying one request did: the company, the channels newly refused, whether anything changed."""

    request: OptOutRequest
    company_id: int | None  # None: no contact has this public id any more
    channels: tuple[Channel, ...] = ()
    changed: bool = False


class OptOutJournal:
    """An append-only file of opt-out requests in ``directory``, safe across threads and processes.

    Every change to the files happens under an exclusive ``flock`` of ``journal.lock``,
    held for a write and an fsync at most, never while the database is being written.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.pending = self.directory / "pending.jsonl"
        self.applied = self.directory / "applied.jsonl"
        self._lock = self.directory / "journal.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _sync_directory(self) -> None:
        """Make a file created or renamed in the journal's folder survive a power cut."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, request: OptOutRequest) -> None:
        """Write ``request`` durably (fsync'd) before returning."""
        with self._locked():
            created = not self.pending.exists()
            fd = os.open(self.pending, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, request.to_line())
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                self._sync_directory()

    def has_pending(self) -> bool:
        """Whether any request may still wait to be applied (cheap: no file is read)."""
        if not self.directory.exists():
            return False
        return self.pending.exists() or any(self.directory.glob("applying-*.jsonl"))

    def take(self) -> list[Path]:
        """Set the pending requests aside for applying; return every file waiting to be applied.

        Files set aside by an earlier attempt that failed (the database was busy, the
        process died) are returned again.
        """
        if not self.has_pending():
            return []
        with self._locked():
            if self.pending.exists():
                os.replace(self.pending, self.directory / f"applying-{uuid.uuid4().hex}.jsonl")
                self._sync_directory()
            return sorted(self.directory.glob("applying-*.jsonl"), key=_age)

    @staticmethod
    def read(files: Sequence[Path]) -> list[OptOutRequest]:
        """The requests in ``files``, in order; a line that cannot be read is logged and skipped."""
        requests: list[OptOutRequest] = []
        for path in files:
            try:
                lines = path.read_bytes().splitlines()
            except FileNotFoundError:  # settled meanwhile by another process
                continue
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    requests.append(OptOutRequest.from_line(line))
                except ValueError:
                    # A line cut short by a crash in the middle of a write: it was never answered.
                    logger.warning(
                        "opt-out journal %s line %d unreadable, skipped", path.name, number
                    )
        return requests

    def settle(self, files: Sequence[Path]) -> None:
        """Move applied ``files`` into ``applied.jsonl`` (kept as the record of what was asked)."""
        with self._locked():
            for path in files:
                try:
                    content = path.read_bytes()
                except FileNotFoundError:  # settled by another process already
                    continue
                fd = os.open(self.applied, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, content)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                path.unlink()
            self._sync_directory()


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def journal_for(settings: Settings) -> OptOutJournal:
    """The journal in the data dir, shared by the portal and the flows."""
    return OptOutJournal(settings.data_dir / JOURNAL_DIR)


def apply_opt_out_requests(
    connection: sa.Connection, requests: Sequence[OptOutRequest]
) -> list[AppliedOptOut]:
    """Apply ``requests`` in the caller's transaction, each at its own time; idempotent."""
    session = Session(bind=connection, expire_on_commit=False)
    applied: list[AppliedOptOut] = []
    try:
        for request in requests:
            contact = session.exec(
                select(Contact).where(Contact.public_id == request.public_id)
            ).first()
            if contact is None:
                logger.info("opt-out for unknown contact %s: nothing to apply", request.public_id)
                applied.append(AppliedOptOut(request, None))
                continue
            if request.scope == "all":
                result = opt_out_company(
                    session=session, contact=contact, source=request.source, now=request.at
                )
                channels, changed = tuple(result.channels), result.changed
            else:
                refused = opt_out(
                    session=session, contact=contact, channels=[request.channel],
                    source=request.source, now=request.at,
                )  # fmt: skip
                channels, changed = tuple(refused), bool(refused)
            applied.append(AppliedOptOut(request, contact.company_id, channels, changed))
        session.flush()
    finally:
        session.close()
    return applied


def apply_pending_opt_outs(
    *, engine: sa.Engine, journal: OptOutJournal, lock_timeout: float | None = None
) -> list[AppliedOptOut]:
    """Apply every request waiting in ``journal`` in one transaction; return what each did.

    With ``lock_timeout`` the database's locks are waited for that long at most; when it
    refuses (busy, or anything else) the error is raised and the requests stay in the
    journal, to be applied by the next call.
    """
    files = journal.take()
    if not files:
        return []
    requests = journal.read(files)
    if requests:
        with write_transaction(engine, lock_timeout=lock_timeout) as connection:
            applied = apply_opt_out_requests(connection, requests)
    else:
        applied = []
    journal.settle(files)
    changed = sum(a.changed for a in applied)
    logger.info(
        "opt-out journal: %d request(s) applied, %d changed something", len(applied), changed
    )
    return applied
