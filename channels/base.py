"""The seam between Synergie and a transport: composed messages in, one result per message out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


ResultCallback = Callable[[DeliveryResult], None]


class ResultLog(list[DeliveryResult]):
    """A batch's results, each handed to ``on_result`` the moment it is known.

    The outbox records a message before the next one is attempted, so a run killed in the
    middle of a batch re-sends at most one message; the callback is how it hears in time.
    """

    def __init__(self, on_result: ResultCallback | None = None) -> None:
        super().__init__()
        self.on_result = on_result

    def append(self, result: DeliveryResult) -> None:
        super().append(result)
        if self.on_result is not None:
            self.on_result(result)

    def extend(self, results: Iterable[DeliveryResult]) -> None:
        for result in results:
            self.append(result)


@runtime_checkable
class EmailBackend(Protocol):
    """Sends a batch over one connection; one bad address never aborts the batch.

    ``on_result`` is called with each message's result before the next one is attempted.
    """

    def send_messages(
        self, messages: list[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]: ...


@runtime_checkable
class SmsBackend(Protocol):
    """Sends a batch of SMS; one bad number never aborts the batch; ``on_result`` as for e-mail."""

    def send_messages(
        self, messages: list[OutgoingSms], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]: ...
