"""Builds the RFC 5322 bytes of an OutgoingEmail by hand, for speed; headers injection-proof.

The stdlib generator (even compat32, STACK-NOTES' fast one) re-folds every header through
email.header and compiles a regex per boundary: more than all the rest of a send. The
structure written here is fixed and small: our headers, then text/plain and text/html in
quoted-printable, extra alternatives and attachments in base64, CRLF throughout.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import encode_rfc2231, format_datetime, formataddr, parseaddr
from functools import lru_cache

from channels.base import Attachment, OutgoingEmail
from channels.errors import PermanentDeliveryError, SenderSideError

__all__ = ["compose_email", "compose_for_delivery", "envelope_address", "single_line"]

# Everything str.splitlines() or a mail parser could treat as a line break, plus other controls:
# collapsed to one space so no value can ever start a new header (tab is legal folding white space).
_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]+")
# RFC 5322 field name: printable US-ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>\Z")
# A bare ASCII address with a dot-atom local part: its own addr-spec, no parsing needed.
_ATOM = r"[A-Za-z0-9!#$%&*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
# Headers compose_email owns; Reply-To is left out on purpose: a message may override the default.
_OWNED_HEADERS = frozenset(
    {
        "bcc",
        "cc",
        "content-transfer-encoding",
        "content-type",
        "date",
        "from",
        "message-id",
        "mime-version",
        "subject",
        "to",
    }
)


def single_line(value: str) -> str:
    """Return ``value`` with each run of CR, LF and other control characters made one space."""
    return _BREAKS.sub(" ", value)


def envelope_address(address: str) -> str:
    """Return the ASCII addr-spec of a bare or ``Name <addr>`` address, for SMTP and headers."""
    if _PLAIN_ADDRESS.match(address):  # the common case, and what the slow path would return
        return address
    text = single_line(address).strip()
    _, addr = parseaddr(text)
    local, at, domain = addr.rpartition("@")
    # parseaddr quietly keeps the first of several addresses: insist it accounts for the input.
    whole = text == addr or text.endswith(f"<{addr}>")
    if not whole or not at or not local or not domain or any(c in addr for c in " ,<>\"'"):
        raise ValueError(f"not a single e-mail address: {address!r}")
    if not local.isascii():
        # A non-ASCII local part needs SMTPUTF8, which we do not negotiate.
        raise ValueError(f"non-ASCII local part is not supported: {address!r}")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


@lru_cache(maxsize=64)  # the sender and reply-to repeat on every message of a run
def _mailbox(address: str, name: str = "", header: str = "To") -> str:
    """Return an address header value: the display name quoted, or as encoded words when it must be.

    A name that is not ASCII, or holds a word too long to fold, becomes base64 encoded words
    of at most 75 characters (RFC 2047) on lines of their own, the address on the last one.
    """
    display = "" if _PLAIN_ADDRESS.match(address) else parseaddr(single_line(address).strip())[0]
    phrase = single_line(name or display).strip()
    addr = envelope_address(address)
    if not phrase:
        return addr
    if phrase.isascii() and _foldable(phrase, header):
        return formataddr((phrase, addr))
    words = _encoded_words(phrase, first_room=_ENCODED_LINE - len(header) - 2)
    return f"{words}\r\n <{addr}>"


def _foldable(value: str, header: str) -> bool:
    """Whether ASCII ``value`` folds at its spaces into lines of at most 78 characters."""
    longest = max((len(word) for word in value.split(" ")), default=0)
    # + 2 for the quotes a display name may need; the first word shares its line with the name.
    return longest + 2 <= _LINE - 1 - len(header) - 2


def _header_value(value: str, name: str = "Subject") -> str:
    """Return ``value`` on one line, or as folded UTF-8 encoded words when it is not ASCII.

    Unstructured text (the subject, ``X-`` headers) with a word too long to fold is encoded
    too; a structured value (a URL in List-Unsubscribe) is left whole, folded at its spaces.
    """
    value = single_line(value).strip()
    unstructured = name.lower() == "subject" or name.lower().startswith("x-")
    if value.isascii() and (not unstructured or _foldable(value, name)):
        return value
    return _encoded_words(value, first_room=_ENCODED_LINE - len(name) - 2)


# RFC 2047: an encoded word is at most 75 characters, a line holding one at most 76.
_ENCODED_WORD, _ENCODED_LINE = 75, 76
# RFC 5322: lines SHOULD stay within 78 characters and MUST within 998.
_LINE, _HARD_LINE = 78, 998
_WORD_FRAME = len("=?utf-8?b??=")


def _encoded_words(value: str, *, first_room: int) -> str:
    """``value`` as base64 UTF-8 encoded words, folded with CRLF SP, never splitting a character.

    The first word fits in ``first_room`` columns (what the header's name leaves on its
    line), the others on continuation lines. Written here because email.header measures
    the text character by character: that was the dearest part of composing a message.
    """
    data = value.encode("utf-8")
    words: list[str] = []
    room = first_room
    start = 0
    while start < len(data):
        # Bytes whose base64 fits in the room left once the frame is written (a multiple of 3).
        end = min(len(data), start + max((min(room, _ENCODED_WORD) - _WORD_FRAME) // 4 * 3, 6))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # inside a multi-byte character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start, room = end, _ENCODED_LINE - 1
    return "\r\n ".join(words)


def _fold(name: str, value: str) -> str:
    """Return the header line ``name: value`` (ASCII), folded at spaces to stay near 78 columns.

    Written here rather than left to compat32's generator, which re-parses and re-folds every
    header through email.header.Header: that was the dearest part of composing a message.
    """
    line = f"{name}: {value}"
    if len(line) <= _LINE or "\r\n " in value:  # short, or folded already (encoded words)
        return _checked(line) + "\r\n"
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if not word:
            continue
        if len(current) + 1 + len(word) > 78 and current.strip() and current != f"{name}:":
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return _checked("\r\n".join(lines)) + "\r\n"


def _checked(folded: str) -> str:
    """``folded`` if none of its lines passes RFC 5322's hard limit; ValueError otherwise."""
    if any(len(line) > _HARD_LINE for line in folded.split("\r\n")):
        raise ValueError(
            f"header {folded.split(':', 1)[0]!r} cannot be folded under 998 characters"
        )
    return folded


def _content_type(value: str) -> tuple[str, str, list[tuple[str, str]]]:
    """Return the main type, subtype and parameters of a Content-Type string."""
    probe = Message()
    probe["Content-Type"] = single_line(value)
    params = [(k, v) for k, v in (probe.get_params() or [])[1:] if isinstance(v, str)]
    return probe.get_content_maintype(), probe.get_content_subtype(), params


@functools.lru_cache(maxsize=256)
def _type_header(content_type: str) -> str:
    """A checked, one-line Content-Type value; text types get charset utf-8 unless they name one."""
    # Cached: a batch of invitations repeats the same two or three types thousands of times,
    # and parsing one through email.message costs more than the rest of its part.
    maintype, subtype, params = _content_type(content_type)
    if maintype == "text" and not any(k.lower() == "charset" for k, _ in params):
        params.append(("charset", "utf-8"))
    rendered = "".join(f"; {name}={_param_value(value)}" for name, value in params)
    return f"{maintype}/{subtype}{rendered}"


def _param_value(value: str) -> str:
    # Bare when a token (method=REQUEST, as Outlook and Google write it: some strict parsers
    # trip on the quoted form), quoted otherwise.
    return value if _TOKEN.fullmatch(value) else f'"{_quoted(value)}"'


def _quoted(value: str) -> str:
    return single_line(value).replace("\\", "\\\\").replace('"', '\\"')


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _text_part(text: str, subtype: str) -> bytes:
    """A UTF-8 quoted-printable text part, headers included (readable for mostly-ASCII French)."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = _crlf(binascii.b2a_qp(body, quotetabs=False, istext=True, header=False))
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + encoded


def _base64_part(content: bytes, content_type: str, extra: str = "") -> bytes:
    """A part carrying ``content`` byte for byte, base64-encoded, headers included."""
    return (
        f"{_fold('Content-Type', _type_header(content_type))}{extra}"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + _crlf(base64.encodebytes(content))


def _attachment_part(attachment: Attachment) -> bytes:
    """``attachment`` as a base64 part, with an RFC 2231 file name when not ASCII."""
    filename = single_line(attachment.filename).replace("/", "_").replace("\\", "_").strip()
    if filename.isascii():
        param = f'filename="{_quoted(filename)}"'
        name = f'name="{_quoted(filename)}"'
    else:
        param = f"filename*={encode_rfc2231(filename, 'utf-8')}"
        name = f"name*={encode_rfc2231(filename, 'utf-8')}"
    return _base64_part(
        attachment.content,
        f"{attachment.mimetype}; {name}" if ";" not in attachment.mimetype else attachment.mimetype,
        _fold("Content-Disposition", f"attachment; {param}"),
    )


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    """A multipart of ``parts``; the boundary cannot occur in QP or base64 content ("==")."""
    boundary = f"==_synergie_{uuid.uuid4().hex}=="
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return head + delimiter[2:] + delimiter.join(parts) + f"\r\n--{boundary}--\r\n".encode("ascii")


def _body(message: OutgoingEmail) -> bytes:
    """The text (+ HTML + alternatives) part, multipart/alternative when more than one."""
    parts = [_text_part(message.text, "plain")]
    if message.html:
        parts.append(_text_part(message.html, "html"))
    parts.extend(_base64_part(content, ctype) for content, ctype in message.alternatives)
    if len(parts) == 1:
        return parts[0]
    return _multipart("alternative", parts)


def _extra_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the caller's headers checked: valid names, none we own, values on one line."""
    checked: list[tuple[str, str]] = []
    for name, value in headers:
        if not _FIELD_NAME.match(name):
            raise ValueError(f"invalid header name: {name!r}")
        if name.lower() in _OWNED_HEADERS:
            raise ValueError(f"header {name!r} is set by compose_email, not through headers")
        is_address = name.lower() == "reply-to"
        checked.append(
            (name, _mailbox(value, "", name) if is_address else _header_value(value, name))
        )
    return checked


@lru_cache(maxsize=2)
def _date_header(date: datetime) -> str:
    # Cached: the header counts whole seconds, and a batch sends hundreds of messages a second.
    return format_datetime(date)


def compose_email(
    message: OutgoingEmail,
    *,
    sender: str,
    reply_to: str | None = None,
    date: datetime | None = None,
) -> bytes:
    """Return the CRLF bytes of ``message`` from ``sender``; raise ValueError if it is unsendable.

    The body is the text part alone, or multipart/alternative of text/plain, text/html and
    ``message.alternatives`` (base64, bytes kept exact), wrapped in multipart/mixed only when
    there are attachments. ``message.headers`` may override Reply-To but not the headers set
    here; Message-ID is ``message.message_id`` exactly and must look like ``<left@right>``.
    """
    if date is None:
        date = datetime.now(UTC)
    elif date.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    message_id = message.message_id.strip()
    if not _MESSAGE_ID.match(message_id):
        raise ValueError(f"message_id must look like <left@right>: {message.message_id!r}")
    extra = _extra_headers(message.headers.items())

    body = _body(message)
    if message.attachments:
        body = _multipart("mixed", [body, *(_attachment_part(a) for a in message.attachments)])
    headers = [
        ("MIME-Version", "1.0"),
        ("From", _mailbox(sender, "", "From")),
        ("To", _mailbox(message.to, message.to_name, "To")),
        ("Subject", _header_value(message.subject)),
        ("Date", _date_header(date.replace(microsecond=0))),
        ("Message-ID", message_id),
    ]
    if reply_to and not any(name.lower() == "reply-to" for name, _ in extra):
        headers.append(("Reply-To", _mailbox(reply_to, "", "Reply-To")))
    headers.extend(extra)
    # Written by hand: the stdlib generator re-folds every header through email.header and
    # compiles a regex per boundary, which cost more than all the rest of a send.
    return "".join(_fold(name, value) for name, value in headers).encode("ascii") + body


def compose_for_delivery(
    message: OutgoingEmail, *, sender: str, reply_to: str | None, date: datetime
) -> tuple[str, bytes]:
    """Return the envelope recipient and the bytes of ``message``, or raise whose fault it is not.

    A recipient address that is not one e-mail address is the recipient's problem
    (PermanentDeliveryError); anything else that cannot be composed comes from us (the From
    or Reply-To setting, a header, the Message-ID): SenderSideError, which blames no one.
    """
    try:
        recipient = envelope_address(message.to)
    except ValueError as exc:
        raise PermanentDeliveryError(f"cannot compose: {exc}") from exc
    try:
        raw = compose_email(message, sender=sender, reply_to=reply_to, date=date)
    except ValueError as exc:
        raise SenderSideError(f"cannot compose: {exc}") from exc
    return recipient, raw
