"""In-memory backends for tests: messages land in ``outbox``; chosen recipients fail on demand."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from channels.base import DeliveryResult, OutgoingEmail, OutgoingSms, ResultCallback, ResultLog
from channels.errors import DeliveryError
from channels.mime import compose_for_delivery

__all__ = ["MemoryEmailBackend", "MemorySmsBackend"]


class MemoryEmailBackend:
    """Keeps every e-mail it "sends" in ``outbox`` (and its composed bytes in ``raw``).

    ``failures`` maps a recipient address (case-insensitive) to the DeliveryError its messages
    get; change it at any time. Messages are composed like a real backend would, so a message
    that cannot be composed fails here too, blaming the recipient or us as a real one would.
    """

    def __init__(
        self,
        *,
        sender: str = "Synergie <synergie@example.org>",
        reply_to: str | None = None,
        failures: Mapping[str, DeliveryError] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.sender = sender
        self.reply_to = reply_to
        self.failures: dict[str, DeliveryError] = {
            address.lower(): error for address, error in (failures or {}).items()
        }
        self.clock = clock or (lambda: datetime.now(UTC))
        self.outbox: list[OutgoingEmail] = []
        self.raw: dict[str, bytes] = {}
        self.batch_sizes: list[int] = []

    def fail(self, address: str, error: DeliveryError) -> None:
        """Make every later message to ``address`` fail with ``error``."""
        self.failures[address.lower()] = error

    def send_messages(
        self, messages: Iterable[OutgoingEmail], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Record each message in ``outbox`` unless it is set to fail; one result per message."""
        results = ResultLog(on_result)
        self.batch_sizes.append(0)
        for message in messages:  # read one at a time, as a real transport does
            self.batch_sizes[-1] += 1
            error = self.failures.get(message.to.lower())
            if error is None:
                try:
                    _, raw = compose_for_delivery(
                        message, sender=self.sender, reply_to=self.reply_to, date=self.clock()
                    )
                except DeliveryError as exc:
                    error = exc
            if error is not None:
                results.append(DeliveryResult(message.key, error=error))
                continue
            self.outbox.append(message)
            self.raw[message.key] = raw
            results.append(DeliveryResult(message.key, provider_id=message.message_id))
        return results


class MemorySmsBackend:
    """Keeps every SMS it "sends" in ``outbox``; ``failures`` maps a number to the error it gets."""

    def __init__(
        self,
        *,
        sender: str = "Synergie",
        failures: Mapping[str, DeliveryError] | None = None,
    ) -> None:
        self.sender = sender
        self.failures: dict[str, DeliveryError] = dict(failures or {})
        self.outbox: list[OutgoingSms] = []
        self.batch_sizes: list[int] = []
        self._ids = itertools.count(1)

    def fail(self, number: str, error: DeliveryError) -> None:
        """Make every later SMS to ``number`` fail with ``error``."""
        self.failures[number] = error

    def send_messages(
        self, messages: Iterable[OutgoingSms], on_result: ResultCallback | None = None
    ) -> list[DeliveryResult]:
        """Record each SMS in ``outbox`` unless it is set to fail; one result per message."""
        results = ResultLog(on_result)
        self.batch_sizes.append(0)
        for message in messages:  # read one at a time, as a real transport does
            self.batch_sizes[-1] += 1
            error = self.failures.get(message.to)
            if error is not None:
                results.append(DeliveryResult(message.key, error=error))
                continue
            self.outbox.append(message)
            results.append(DeliveryResult(message.key, provider_id=f"mem-{next(self._ids)}"))
        return results
