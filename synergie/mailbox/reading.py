"""Tell what one incoming mail is, from its bytes alone: a delivery report, a calendar answer, an
unsubscribe request, an automatic reply, or something for staff to read.

Nothing here touches the database: ``read_mail`` only reads, and what the mail *means* for a
contact (which outbox row, which visit, whose token) is decided in ``synergie.mailbox.applying``.
The order matters: delivery reports first (RFC 3464 reports carry ``Auto-Submitted`` too),
then calendar answers (an Exchange resource may answer automatically), then unsubscribe
requests, and only then automatic replies.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

__all__ = [
    "AutoReply",
    "CalendarAnswer",
    "DeliveryReport",
    "MailRead",
    "RecipientStatus",
    "UnsubscribeRequest",
    "Unrecognised",
    "mail_digest",
    "read_mail",
]

# Only this much of a body is searched (an unsubscribe token, an iCalendar METHOD).
_BODY_LIMIT = 100_000
_ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(r"<[^<>\s@]{1,200}@[^<>\s@]{1,200}>")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|tr|fw|fwd|aw|wg|réf|ref)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
# An unsubscribe token as links.py writes it: "v1.<payload>.<tag>", base64url parts.
_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_.-])v1\.[A-Za-z0-9_-]{4,400}\.[A-Za-z0-9_-]{16,64}(?![A-Za-z0-9_-])"
)
_UNSUBSCRIBE_WORD = re.compile(
    r"^(?:d[ée]sinscri(?:ption|re|vez[- ]moi)|se d[ée]sinscrire|d[ée]sabonne(?:ment|r|z[- ]moi)|"
    r"unsubscribe|stop)\b",
    re.I,
)
# Without a token, only a subject that is the request and nothing else: « Désinscription »,
# "unsubscribe" (a subject like « Désinscription de notre ancien collègue » is for staff).
_UNSUBSCRIBE_ONLY = re.compile(
    r"^(?:d[ée]sinscri(?:ption|re|vez[- ]moi)|se d[ée]sinscrire|d[ée]sabonne(?:ment|r|z[- ]moi)|"
    r"unsubscribe|stop)[\s.!]*$",
    re.I,
)
# Out-of-office subjects; « Absence » only as a tag (« Absence : … », « Absence du bureau »),
# since « Absence de réponse à votre courrier » is a person writing.
_OUT_OF_OFFICE = re.compile(
    r"^(?:r[ée]ponse automatique|message automatique|automatic reply|auto[- ]?reply|autoreply|"
    r"auto[- ]?response|out of (?:the )?office|message d'absence|abwesenheit|auto:|"
    r"automatische antwort|respuesta autom[áa]tica|risposta automatica|"
    r"(?:absence|absent|absente)(?:\s+du bureau)?\s*(?:[:(\-–]|$))",
    re.I,
)
_METHOD_REPLY = re.compile(rb"^METHOD\s*:\s*REPLY\s*$", re.I | re.M)


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One per-recipient block of a delivery report (RFC 3464 §2.3)."""

    action: str  # failed, delayed, delivered, relayed, expanded (lower case)
    status: str  # the enhanced status code, e.g. "5.1.1" ("" when unreadable)
    final_recipient: str | None
    original_recipient: str | None
    diagnostic: str

    @property
    def addresses(self) -> set[str]:
        """The addresses this block is about, lower case."""
        return {a for a in (self.final_recipient, self.original_recipient) if a}

    @property
    def permanent(self) -> bool:
        """Whether this is a permanent failure (``failed`` with a 5.x.x status)."""
        return self.action == "failed" and self.status.startswith("5.")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """An RFC 3464 delivery status notification: per-recipient statuses, and the Message-IDs it returns."""

    recipients: tuple[RecipientStatus, ...]
    original_message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CalendarAnswer:
    """A mail carrying an iTIP REPLY (``text/calendar; method=REPLY`` or an ``.ics`` with METHOD:REPLY)."""

    ics: bytes


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    """A mail to the ``mailto:`` of ``List-Unsubscribe``: the token it carries, if any (not yet verified)."""

    token: str | None


@dataclass(frozen=True, slots=True)
class AutoReply:
    """An automatic answer (RFC 3834, out-of-office, read receipt): ignored."""

    why: str


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """Anything else, unreadable mails included: for staff to read (French reason)."""

    why: str


MailKind = DeliveryReport | CalendarAnswer | UnsubscribeRequest | AutoReply | Unrecognised


@dataclass(frozen=True, slots=True)
class MailRead:
    """What ``read_mail`` found: the mail's own identity, and what kind of mail it is."""

    message_id: str | None
    sender: str | None  # the From address, lower case
    subject: str
    kind: MailKind


def mail_digest(raw: bytes) -> str:
    """Return the SHA-256 of a raw mail: the key under which it is handled once."""
    return hashlib.sha256(raw).hexdigest()


def read_mail(raw: bytes) -> MailRead:
    """Return what ``raw`` is; never raises: a mail that cannot be read is ``Unrecognised``."""
    if not raw or not raw.strip():
        return MailRead(None, None, "", Unrecognised("courriel vide"))
    try:
        message = email.message_from_bytes(raw)
    except Exception as exc:  # the compat32 parser is lenient; be sure nothing escapes
        return MailRead(None, None, "", Unrecognised(f"courriel illisible : {exc}"))
    if not message.keys() or (not message["From"] and not message["Message-ID"]):
        return MailRead(None, None, "", Unrecognised("courriel illisible : aucun en-tête"))
    message_id = _message_id(message.get("Message-ID"))
    sender = _address(_header(message, "From"))
    subject = _header(message, "Subject")
    try:
        kind = _kind(message, subject)
    except Exception as exc:  # a malformed part must not stop the mailbox: staff will look
        kind = Unrecognised(f"courriel illisible : {type(exc).__name__}: {exc}")
    return MailRead(message_id, sender, subject, kind)


def _kind(message: Message, subject: str) -> MailKind:
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    if message.get_content_type() == "multipart/report":
        if report_type == "delivery-status":
            report = _delivery_report(message)
            if report.recipients:
                return report
            return Unrecognised("avis de remise sans destinataire lisible")
        if report_type == "disposition-notification":
            return AutoReply("accusé de lecture")
    ics = _calendar_reply(message)
    if ics is not None:
        return CalendarAnswer(ics)
    request = _unsubscribe(message, subject)
    if request is not None:
        return request
    why = _automatic(message, subject)
    if why is not None:
        return AutoReply(why)
    return Unrecognised(
        "courriel à lire (ni avis de remise, ni réponse d'agenda, ni désinscription)"
    )


# --- pieces ----------------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    """Return a header decoded (RFC 2047) on one line, or "" when absent or undecodable."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def _address(value: str) -> str | None:
    """Return the one address in a header value, lower case, or None."""
    found = [addr for _, addr in getaddresses([value]) if "@" in addr]
    return found[0].strip().lower() if len(found) == 1 else None


def _message_id(value: object) -> str | None:
    if value is None:
        return None
    match = _MESSAGE_ID.search(str(value))
    return _normal_message_id(match.group(0)) if match else None


def _normal_message_id(value: str) -> str:
    """``<local@Domain>`` → ``<local@domain>``: servers may change the domain's case, never the local part."""
    local, _, domain = value.strip()[1:-1].rpartition("@")
    return f"<{local}@{domain.lower()}>"


def _recipient(value: object) -> str | None:
    """``rfc822; Someone@Example.org`` → ``someone@example.org`` (None for other address types)."""
    if value is None:
        return None
    kind, _, address = str(value).partition(";")
    if not address:
        kind, address = "rfc822", kind
    if kind.strip().lower() != "rfc822":
        return None
    address = parseaddr(address.strip())[1] or address.strip().strip("<>")
    return address.lower() if "@" in address else None


def _status(block: Message) -> str:
    """The enhanced status code of a block; X.0.0 made precise from the diagnostic when it says more."""
    match = _ENHANCED_STATUS.search(str(block.get("Status", "")))
    status = ".".join(match.groups()) if match else ""
    if not status or status.endswith(".0.0"):
        better = _ENHANCED_STATUS.search(str(block.get("Diagnostic-Code", "")))
        if better and (not status or better.group(1) == status[0]):
            status = ".".join(better.groups())
    return status


def _delivery_report(message: Message) -> DeliveryReport:
    recipients: list[RecipientStatus] = []
    returned_ids: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            payload: Any = part.get_payload()
            if isinstance(
                payload, str
            ):  # a server that sent it as text: parse the blocks ourselves
                payload = [HeaderParser().parsestr(b) for b in re.split(r"\r?\n\r?\n", payload)]
            blocks: list[Message] = [b for b in payload if isinstance(b, Message)]
            for block in blocks[1:]:
                action = str(block.get("Action", "")).strip().lower()
                if not action:
                    continue
                recipients.append(
                    RecipientStatus(
                        action=action,
                        status=_status(block),
                        final_recipient=_recipient(block.get("Final-Recipient")),
                        original_recipient=_recipient(block.get("Original-Recipient")),
                        diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:500],
                    )
                )
        elif ctype in ("message/rfc822", "message/global"):
            inner: Any = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                returned_ids.extend(_ids_in(inner[0].get("Message-ID")))
        elif ctype in ("text/rfc822-headers", "message/global-headers"):
            data = part.get_payload(decode=True)
            data = data if isinstance(data, bytes) else b""
            headers = BytesHeaderParser().parsebytes(data[:_BODY_LIMIT])
            returned_ids.extend(_ids_in(headers.get("Message-ID")))
    if not returned_ids:
        # Some servers return no headers but quote the original Message-ID in their text: any
        # Message-ID-shaped string is a candidate; only those matching an outbox row count.
        own = _message_id(message.get("Message-ID"))
        text = message.as_bytes()[:_BODY_LIMIT].decode("ascii", "replace")
        returned_ids = [
            found
            for found in (_normal_message_id(m) for m in _MESSAGE_ID.findall(text))
            if found != own
        ]
    return DeliveryReport(tuple(recipients), tuple(dict.fromkeys(returned_ids)))


def _ids_in(value: object) -> list[str]:
    return [_normal_message_id(m) for m in _MESSAGE_ID.findall(str(value or ""))]


def _calendar_reply(message: Message) -> bytes | None:
    """Return the first calendar part holding METHOD:REPLY, or None."""
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if ctype not in ("text/calendar", "application/ics") and not filename.endswith(".ics"):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data.strip():
            continue
        # Unfold first: "METHOD:RE\r\n PLY" is still a REPLY.
        unfolded = re.sub(rb"\r?\n[ \t]", b"", data[:_BODY_LIMIT])
        if _METHOD_REPLY.search(unfolded):
            return data
    return None


def _unsubscribe(message: Message, subject: str) -> UnsubscribeRequest | None:
    """A subject that asks to unsubscribe: with the token it (or, for a bare request, the body) carries."""
    text = _REPLY_PREFIX.sub("", subject).strip()
    if not _UNSUBSCRIBE_WORD.match(text):
        return None
    token = _TOKEN.search(text)
    if token:
        return UnsubscribeRequest(token.group(0))
    if not _UNSUBSCRIBE_ONLY.match(text):
        return None
    body = _first_text(message)
    token = _TOKEN.search(body) if body else None
    return UnsubscribeRequest(token.group(0) if token else None)


def _first_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return data[:_BODY_LIMIT].decode(charset, "replace")
                except LookupError:
                    return data[:_BODY_LIMIT].decode("utf-8", "replace")
    return ""


def _automatic(message: Message, subject: str) -> str | None:
    """Why this mail is an automatic reply (RFC 3834 and the usual marks), or None."""
    submitted = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if message.get(name) is not None:
            return name
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if _OUT_OF_OFFICE.match(_REPLY_PREFIX.sub("", subject).strip()):
        return f"objet « {subject[:80]} »"
    return None
