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


# ``on_result`` may record a result in the background: it then returns a callable that
# waits until the result is recorded (and raises what recording raised).
ResultCallback = Callable[[DeliveryResult], Callable[[], object] | None]


class ResultLog(list[DeliveryResult]):
    """A batch's results, each handed to ``on_result`` in order, in time for the outbox.

    The outbox must record message k before message k+1 can be accepted by the server, so
    that a run killed in the middle of a batch re-sends at most one message. ``append``
    hands a result over at once. A pipelining backend may ``hold`` one instead and
    ``release`` it a little later, while the server is busy with the next message's first
    command: whatever happens, a held result is released before the next ``hold`` or
    ``append``, and the backend releases the last one before it returns.

    When ``on_result`` records in the background (it returned a waiter), ``settle`` waits
    for it. A pipelining backend settles as late as it may, just before the next message's
    data is complete (its final dot sent), so that the recording overlaps the next
    message's first commands; every other method settles first, and so does ``append``
    after handing its result over: for any other backend nothing changes.
    """

    def __init__(self, on_result: ResultCallback | None = None) -> None:
        super().__init__()
        self.on_result = on_result
        self._held: DeliveryResult | None = None
        self._pending: Callable[[], object] | None = None

    def append(self, result: DeliveryResult) -> None:
        self.hold(result)
        self.release()
        self.settle()

    def extend(self, results: Iterable[DeliveryResult]) -> None:
        for result in results:
            self.append(result)

    def hold(self, result: DeliveryResult) -> None:
        """Keep ``result`` (after releasing any result held before it) until ``release``."""
        self.release()
        self.settle()
        super().append(result)
        self._held = result

    def release(self) -> None:
        """Hand the held result, if any, to ``on_result``."""
        held, self._held = self._held, None
        if held is not None and self.on_result is not None:
            self.settle()
            self._pending = self.on_result(held)

    def settle(self) -> None:
        """Return once every result handed over is recorded."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()


@runtime_checkable
class EmailBackend(Protocol):
    """Sends a batch over one connection; one bad address never aborts the batch.

    ``messages`` may be a lazy iterable (rendered as it is read). ``on_result`` is called
    with each message's result, in order, before the next message can be accepted by the
    server (see ``ResultLog``).
    """

    def send_messages(
        self, messages: Iterable[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]: ...


@runtime_checkable
class SmsBackend(Protocol):
    """Sends a batch of SMS; one bad number never aborts the batch; ``on_result`` as for e-mail."""

    def send_messages(
        self, messages: Iterable[OutgoingSms], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]: ...
