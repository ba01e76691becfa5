"""Delivery errors, as a tree: whose fault it is decides what happens to the outbox row.

DeliveryError                    something stopped one message from leaving
 ├── TransientDeliveryError      4xx, 429, 5xx from an HTTP API, disconnect, timeout:
 │                               retried with bounded backoff
 ├── PermanentDeliveryError      5xx SMTP answer about this message, refused recipient,
 │    │                          invalid number: never retried, the address is marked invalid
 │    └── RecipientOptedOutError   the recipient told the carrier to stop (Twilio 21610)
 └── SenderSideError             our side is wrong, not the recipient: a setting (From,
                                 Reply-To, a template) that cannot be composed, a login the
                                 relay refuses, MAIL FROM refused, "relay denied", a bad
                                 Twilio account or sender. The run stops, the rows go back
                                 to the queue untouched, and no recipient is ever marked.

Only an answer about one recipient (RCPT refused for that address, an invalid number) is
a PermanentDeliveryError. The outbox also treats as a SenderSideError the same permanent
answer given for several different recipients in a row (see synergie.messaging.sending).
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A message could not be delivered; ``code`` and ``detail`` are the server's own words."""

    def __init__(self, detail: str, *, code: int | None = None) -> None:
        super().__init__(f"{code} {detail}" if code is not None else detail)
        self.code = code
        self.detail = detail


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: the server or the network failed, not the address."""


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help: the address or number is wrong or refused."""


class RecipientOptedOutError(PermanentDeliveryError):
    """The recipient asked the carrier to stop; they must never be messaged on this channel again."""


class SenderSideError(DeliveryError):
    """Our settings, account or relay are at fault: stop sending, blame no recipient, fix and rerun."""
