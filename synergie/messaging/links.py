"""Signed links in messages: HMAC tokens naming a contact by its public id, and unsubscribe headers."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from synergie.settings import Settings

__all__ = [
    "CALL_LOG",
    "REFERRAL",
    "RSVP",
    "STAFF_CSRF",
    "STAFF_SESSION",
    "STAFF_SIGN_IN",
    "UNSUBSCRIBE",
    "CallLink",
    "call_log_url",
    "read_call_log_token",
    "ExpiredToken",
    "InvalidToken",
    "TokenClaims",
    "meeting_token",
    "read_token",
    "referral_url",
    "rsvp_url",
    "sign_token",
    "unsubscribe_headers",
    "unsubscribe_token",
    "unsubscribe_url",
]

# Purposes: a token signed for one is refused for every other (the purpose is inside the MAC).
UNSUBSCRIBE = "unsubscribe"
RSVP = "rsvp"
REFERRAL = "referral"
# The answers in an RSVP link's path; the page still asks to confirm with a POST.
RSVP_CHOICES = ("oui", "non", "peut-etre")

# A volunteer's page for one call of their list (subject: the call task, channel: caller-company).
CALL_LOG = "call-log"
# Staff: the one-time sign-in link, the session cookie, and the forms' CSRF token.
STAFF_SIGN_IN = "staff-sign-in"
STAFF_SESSION = "staff-session"
STAFF_CSRF = "staff-csrf"

# Format v1: "v1.<base64url(payload)>.<base64url(tag)>", with payload = subject US channel US expiry
# (empty when absent) and tag = the first 16 bytes of HMAC-SHA256(key, domain | purpose | payload).
# 128 bits of tag keep links short in e-mail headers and are far beyond guessing.
VERSION = "v1"
_DOMAIN = b"synergie-link"
_SEPARATOR = "\x1f"
_TAG_BYTES = 16
# Longest well-formed v1 token is well under this; anything longer is refused before decoding.
_MAX_TOKEN_LENGTH = 512
_PURPOSE = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")
# Printable ASCII without space: no separator, no CR/LF can reach a URL or a header.
_FIELD = re.compile(r"[\x21-\x7e]{1,128}\Z")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+\Z")

_INVALID_MESSAGE = (
    "Ce lien n'est pas valide : il a peut-être été coupé ou modifié en chemin. "
    "Copiez le lien complet depuis le message reçu, ou écrivez-nous."
)
_EXPIRED_MESSAGE = "Ce lien a expiré. Écrivez-nous, ou utilisez le lien du message le plus récent."


class InvalidToken(ValueError):
    """A link token that is malformed, tampered with, signed for another purpose or expired.

    The message is in French, for the person who followed the link.
    """

    def __init__(self, message: str = _INVALID_MESSAGE) -> None:
        super().__init__(message)


class ExpiredToken(InvalidToken):
    """A genuine token whose expiry has passed."""

    def __init__(self, message: str = _EXPIRED_MESSAGE) -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a genuine token says: for what, about whom, on which channel, until when."""

    purpose: str
    subject: str
    channel: str | None = None
    expires_at: datetime | None = None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decode unpadded base64url, refusing any non-canonical spelling of the same bytes."""
    if not _BASE64URL.match(text):
        raise InvalidToken()
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken() from exc
    # The last character may carry unused bits: without this check several spellings of one
    # token would all verify, and a flipped character could go unnoticed.
    if _b64encode(data) != text:
        raise InvalidToken()
    return data


def _tag(key: bytes, purpose: str, payload: bytes) -> bytes:
    message = b"|".join((_DOMAIN, VERSION.encode(), purpose.encode(), payload))
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _check_key(key: bytes) -> None:
    if not key:
        raise ValueError("link signing key is empty")


def _check_purpose(purpose: str) -> None:
    if not _PURPOSE.match(purpose):
        raise ValueError(f"invalid link purpose {purpose!r}: lowercase letters, digits and dashes")


def sign_token(
    *,
    key: bytes,
    purpose: str,
    subject: str,
    channel: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Return a URL-safe token binding ``subject`` (and ``channel``) to ``purpose``, signed with ``key``."""
    _check_key(key)
    _check_purpose(purpose)
    if not _FIELD.match(subject):
        raise ValueError("token subject must be 1-128 printable ASCII characters without spaces")
    if channel is not None and not _FIELD.match(str(channel)):
        raise ValueError("token channel must be 1-128 printable ASCII characters without spaces")
    expiry = ""
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        expiry = str(int(expires_at.timestamp()))
    payload = _SEPARATOR.join((subject, "" if channel is None else str(channel), expiry)).encode()
    return f"{VERSION}.{_b64encode(payload)}.{_b64encode(_tag(key, purpose, payload))}"


def read_token(
    token: str,
    *,
    key: bytes,
    purpose: str,
    now: datetime | None = None,
    previous_keys: Sequence[bytes] = (),
) -> TokenClaims:
    """Return the claims of a genuine token for ``purpose``, or raise InvalidToken (ExpiredToken when out of date).

    ``previous_keys`` are keys in use before a rotation: a token signed with one of them (a
    link in a message sent earlier) is still genuine. New tokens are signed with ``key`` only.
    """
    _check_key(key)
    _check_purpose(purpose)
    keys = [key, *(k for k in previous_keys if k)]
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken()
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidToken()
    payload, tag = _b64decode(parts[1]), _b64decode(parts[2])
    # compare_digest: the time taken must not tell an attacker how many bytes were right.
    if not any(hmac.compare_digest(tag, _tag(k, purpose, payload)) for k in keys):
        raise InvalidToken()
    # Signed by us, so well-formed unless the key leaked; check anyway rather than crash.
    try:
        subject, channel, expiry = payload.decode("ascii").split(_SEPARATOR)
        expires_at = datetime.fromtimestamp(int(expiry), UTC) if expiry else None
    except ValueError as exc:
        raise InvalidToken() from exc
    if expires_at is not None:
        if now is None:
            raise ValueError("now is required to read a token that expires")
        if now >= expires_at:
            raise ExpiredToken()
    return TokenClaims(
        purpose=purpose, subject=subject, channel=channel or None, expires_at=expires_at
    )


def unsubscribe_token(settings: Settings, contact_public_id: str, channel: str) -> str:
    """Return the never-expiring unsubscribe token of a contact for one channel."""
    # RFC 8058 clients may POST months later: unsubscribe tokens carry no expiry on purpose.
    return _unsubscribe_token(settings.link_signing_key, contact_public_id, str(channel))


@functools.lru_cache(maxsize=8)
def _unsubscribe_token(key: bytes, contact_public_id: str, channel: str) -> str:
    # Cached: a message asks for it twice in a row (the link in its body, then its
    # List-Unsubscribe header), and signing cost more than the rest of those two.
    return sign_token(key=key, purpose=UNSUBSCRIBE, subject=contact_public_id, channel=channel)


def _portal_base(settings: Settings) -> str:
    """The portal's public base URL; HTTPS in production, since RFC 8058 one-click requires it."""
    base = settings.public_url.rstrip("/")
    if settings.environment == "production" and not base.lower().startswith("https://"):
        from synergie.settings import SettingsError

        raise SettingsError(
            f"SYNERGIE_PUBLIC_URL doit commencer par https:// en production (valeur : {base!r}) : "
            "les messageries n'acceptent la désinscription en un clic que sur une adresse HTTPS."
        )
    return base


def unsubscribe_url(settings: Settings, contact_public_id: str, channel: str) -> str:
    """Return the portal's unsubscribe page for a contact and channel: ``{public_url}/desinscription/{token}``."""
    token = unsubscribe_token(settings, contact_public_id, channel)
    return f"{_portal_base(settings)}/desinscription/{token}"


def unsubscribe_headers(settings: Settings, contact_public_id: str, channel: str) -> dict[str, str]:
    """Return the RFC 2369 / RFC 8058 ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers."""
    token = unsubscribe_token(settings, contact_public_id, channel)
    targets = [f"<{_portal_base(settings)}/desinscription/{token}>"]
    mailbox = settings.unsubscribe_mailbox
    if "@" in mailbox:  # parseaddr turns a From without an address into a bare word
        # The token is base64url plus dots: nothing in it needs escaping inside a mailto URI.
        address = quote(mailbox, safe="@!$'*+=^_`{|}~.-")
        targets.append(f"<mailto:{address}?subject=desinscription%20{token}>")
    headers = {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    for name, value in headers.items():
        # A settings value with a line break would let it start a header of its own.
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError(f"{name} would span several lines; check SYNERGIE_PUBLIC_URL")
    return headers


def meeting_token(settings: Settings, purpose: str, contact_public_id: str, meeting_id: int) -> str:
    """Return the token naming a contact invited to a meeting, for ``RSVP`` or ``REFERRAL`` links."""
    # No expiry: the portal refuses an answer once the meeting has started, with a clear page;
    # the same token in every version of the invitation keeps old e-mails working.
    return sign_token(
        key=settings.link_signing_key,
        purpose=purpose,
        subject=contact_public_id,
        channel=f"meeting-{int(meeting_id)}",
    )


def rsvp_url(settings: Settings, contact_public_id: str, meeting_id: int, choice: str) -> str:
    """Return one of the three answer links of a meeting invitation: ``/reunion/{token}/{choice}``."""
    if choice not in RSVP_CHOICES:
        raise ValueError(f"unknown RSVP choice {choice!r}")
    token = meeting_token(settings, RSVP, contact_public_id, meeting_id)
    return f"{_portal_base(settings)}/reunion/{token}/{choice}"


def referral_url(settings: Settings, contact_public_id: str, meeting_id: int) -> str:
    """Return a participant's personal link to bring a company to the meeting: ``/parrainage/{token}``."""
    token = meeting_token(settings, REFERRAL, contact_public_id, meeting_id)
    return f"{_portal_base(settings)}/parrainage/{token}"


@dataclass(frozen=True, slots=True)
class CallLink:
    """What a volunteer's call link names: one call task, its caller and its company."""

    task_id: int
    caller_id: int
    company_id: int


def call_log_token(settings: Settings, link: CallLink, *, expires_at: datetime) -> str:
    """Return the token of a volunteer's page for one call, valid until ``expires_at``."""
    return sign_token(
        key=settings.link_signing_key,
        purpose=CALL_LOG,
        subject=str(link.task_id),
        channel=f"{link.caller_id}-{link.company_id}",
        expires_at=expires_at,
    )


def call_log_url(settings: Settings, link: CallLink, *, expires_at: datetime) -> str:
    """Return ``{public_url}/appel/{token}``: the page where a volunteer notes one call's outcome."""
    return f"{_portal_base(settings)}/appel/{call_log_token(settings, link, expires_at=expires_at)}"


def read_call_log_token(
    token: str, *, key: bytes, now: datetime, previous_keys: Sequence[bytes] = ()
) -> CallLink:
    """Return what a genuine, unexpired call link names, or raise InvalidToken."""
    claims = read_token(token, key=key, purpose=CALL_LOG, now=now, previous_keys=previous_keys)
    try:
        caller, company = (claims.channel or "").split("-")
        return CallLink(int(claims.subject), int(caller), int(company))
    except ValueError as exc:
        raise InvalidToken() from exc
