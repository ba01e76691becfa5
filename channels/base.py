"""The seam between Synergie and a transport: composed messages in, one result per message out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from channels.errors import DeliveryError


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to an e-mail."""

    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One e-mail ready to leave: everything rendered, nothing left to decide.

    ``key`` is the outbox row's unique key, so results can be matched back;
    ``message_id`` is unique per outbox row (never derived from from/to/subject).
    ``alternatives`` are extra parts of the multipart/alternative beside text and HTML,
    e.g. ``(ics_bytes, "text/calendar; method=REQUEST")``.
    """

    key: str
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    to_name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    alternatives: tuple[tuple[bytes, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS ready to leave; ``to`` is in E.164."""

    key: str
    to: str
    body: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one message: sent (with the provider's id) or failed with a DeliveryError."""

    key: str
    provider_id: str | None = None
    error: DeliveryError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class EmailBackend(Protocol):
    """Sends a batch over one connection; one bad address never aborts the batch."""

    def send_messages(self, messages: list[OutgoingEmail]) -> list[DeliveryResult]: ...


@runtime_checkable
class SmsBackend(Protocol):
    """Sends a batch of SMS; one bad number never aborts the batch."""

    def send_messages(self, messages: list[OutgoingSms]) -> list[DeliveryResult]: ...
