"""Delivery errors, as a tree; only transient ones are retried.

DeliveryError                   something stopped one message from leaving
 ├── TransientDeliveryError     4xx, 429, 5xx from an HTTP API, disconnect, timeout:
 │                              retried with bounded backoff
 └── PermanentDeliveryError     5xx SMTP, refused recipient, invalid number: never retried
      └── RecipientOptedOutError  the recipient told the carrier to stop (Twilio 21610)
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
