"""Mails as they come back in real life, built by the tests: DSNs, calendar answers, unsubscribes, absences."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit

WHEN = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def headers_of(raw: bytes) -> bytes:
    """The header section of a raw message, CRLF line ends."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.replace(b"\n", b"\r\n") + b"\r\n"


def dsn(
    original: bytes,
    *,
    recipient: str,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    whole_message: bool = False,
    sender: str = "eit@example.org",
) -> bytes:
    """An RFC 3464 report as Postfix writes it, about ``original`` (the raw message we sent)."""
    boundary = f"B{uuid.uuid4().hex}"
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    returned_type = "message/rfc822" if whole_message else "text/rfc822-headers"
    returned = original if whole_message else headers_of(original)
    text = (
        f"Return-Path: <>\r\n"
        f"Date: {format_datetime(WHEN)}\r\n"
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {sender}\r\n"
        f"Subject: {subject}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.net')}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.example.net.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "X-Postfix-Queue-ID: 4Q1xyz2abc\r\n"
        f"X-Postfix-Sender: rfc822; {sender}\r\n"
        f"Arrival-Date: {format_datetime(WHEN)}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mail.example.net\r\n"
        f"Diagnostic-Code: {diagnostic.format(rcpt=recipient)}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Undelivered Message{' Headers' if not whole_message else ''}\r\n"
        f"Content-Type: {returned_type}\r\n\r\n"
    ).encode()
    return text + returned + f"\r\n--{boundary}--\r\n".encode()


def unsubscribe_mailto(original: bytes) -> tuple[str, str]:
    """The (address, subject) of the ``mailto:`` in the List-Unsubscribe of ``original``."""
    import email

    header = str(email.message_from_bytes(original)["List-Unsubscribe"])
    target = next(part.strip().strip("<>") for part in header.split(",") if "mailto:" in part)
    parts = urlsplit(target)
    query = dict(item.split("=", 1) for item in parts.query.split("&"))
    return unquote(parts.path), unquote(query["subject"])


def plain_mail(*, sender: str, to: str, subject: str, body: str = "", **headers: str) -> bytes:
    """A simple text mail, as a person's mail client sends it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(WHEN)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or "x.example")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body or "\n")
    return bytes(message)


def reply_ics(
    *,
    uid: str,
    attendee: str,
    partstat: str,
    start: datetime,
    sequence: int = 0,
    comment: str | None = None,
    outlook: bool = False,
) -> str:
    """An iTIP REPLY as Outlook (Windows zone, MAILTO in capitals) or Gmail (UTC times) writes it."""
    if outlook:
        local = start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
        lines = [
            "BEGIN:VCALENDAR", "METHOD:REPLY", "PRODID:Microsoft Exchange Server 2010",
            "VERSION:2.0", "BEGIN:VTIMEZONE", "TZID:Romance Standard Time", "BEGIN:STANDARD",
            "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
            "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200", "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
            "END:DAYLIGHT", "END:VTIMEZONE", "BEGIN:VEVENT",
            f"ATTENDEE;PARTSTAT={partstat};CN=Le Contact:MAILTO:{attendee}",
            *([f"COMMENT;LANGUAGE=fr-FR:{comment}"] if comment else []),
            "SUMMARY;LANGUAGE=fr-FR:Accepté: Visite Économie positive",
            f"DTSTART;TZID=Romance Standard Time:{local:%Y%m%dT%H%M%S}",
            f"UID:{uid}", "CLASS:PUBLIC", "DTSTAMP:20261103T081500Z", f"SEQUENCE:{sequence}",
            "X-MICROSOFT-CDO-APPT-SEQUENCE:0", "END:VEVENT", "END:VCALENDAR",
        ]  # fmt: skip
    else:
        lines = [
            "BEGIN:VCALENDAR", "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
            "VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:REPLY", "BEGIN:VEVENT",
            f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}", "DTSTAMP:20261103T164233Z",
            "ORGANIZER;CN=Claire Martin:mailto:claire@example.org", f"UID:{uid}",
            "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;"
            f"PARTSTAT={partstat};CN=Le Contact;X-NUM-GUESTS=0:mailto:{attendee}",
            *([f"COMMENT:{comment}"] if comment else []),
            f"SEQUENCE:{sequence}", "STATUS:CONFIRMED", "SUMMARY:Visite Économie positive",
            "END:VEVENT", "END:VCALENDAR",
        ]  # fmt: skip
    return "\r\n".join(lines) + "\r\n"


def outlook_reply(
    *, sender: str, ics: str, subject: str = "Accepté: Visite de votre site"
) -> bytes:
    """Outlook's answer: multipart/alternative with a base64 ``text/calendar; method=REPLY`` part."""
    boundary = f"_000_{uuid.uuid4().hex}_"
    encoded = base64.encodebytes(ics.encode()).decode().replace("\n", "\r\n")
    return (
        f"From: Le Contact <{sender}>\r\n"
        "To: Claire Martin <claire@example.org>\r\n"
        f"Subject: {subject}\r\n"
        "Thread-Topic: Visite de votre site\r\n"
        f"Date: {format_datetime(WHEN)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@EXCH01.example.fr>\r\n"
        "Content-Language: fr-FR\r\n"
        "X-MS-Has-Attach:\r\n"
        "X-MS-TNEF-Correlator:\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("Accepté\r\n".encode()).decode().replace("\n", "\r\n")
        + f"\r\n--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("<html><body>Accepté</body></html>".encode())
        .decode()
        .replace("\n", "\r\n")
        + f"\r\n--{boundary}\r\n"
        'Content-Type: text/calendar; charset="utf-8"; method=REPLY\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{encoded}\r\n--{boundary}--\r\n"
    ).encode()


def gmail_reply(*, sender: str, ics: str, subject: str = "Invitation acceptée") -> bytes:
    """Gmail's answer: an alternative with ``text/calendar; method=REPLY`` plus ``invite.ics`` attached."""
    message = EmailMessage()
    message["From"] = f"Le Contact <{sender}>"
    message["To"] = "claire@example.org"
    message["Subject"] = f"{subject}: Visite Économie positive"
    message["Date"] = format_datetime(WHEN)
    message["Message-ID"] = make_msgid(domain="mail.gmail.com")
    message.set_content("Le Contact a accepté cette invitation.")
    message.add_alternative("<p>Le Contact a accepté cette invitation.</p>", subtype="html")
    message.add_alternative(ics, subtype="calendar", params={"method": "REPLY"})
    message.add_attachment(
        ics.encode(), maintype="application", subtype="ics", filename="invite.ics"
    )
    return bytes(message)


def out_of_office(*, sender: str, subject: str, rfc3834: bool = True) -> bytes:
    """An absence message as Exchange sends it (with ``Auto-Submitted``) or a bare one."""
    headers = (
        {"Auto_Submitted": "auto-replied", "X_Auto_Response_Suppress": "All"} if rfc3834 else {}
    )
    return plain_mail(
        sender=sender, to="eit@example.org", subject=subject,
        body="Je suis absent jusqu'au 15 novembre. En cas d'urgence : accueil@example.org.",
        **headers,
    )  # fmt: skip


GARBAGE = bytes(range(256)) * 3 + b"\x00\xff\xfe garbage \x81\x8d\x8f\x90\x9d"


def client_reply(
    request: bytes, *, partstat: str, attendee: str | None = None, comment: str | None = None
) -> str:
    """The iTIP REPLY a calendar client (Thunderbird's shape) writes to a REQUEST it received.

    Built with icalendar from the REQUEST itself: METHOD:REPLY, the same UID, SEQUENCE, times
    (TZID and VTIMEZONE kept) and ORGANIZER, and one ATTENDEE (the person answering) with PARTSTAT.
    """
    from icalendar import Calendar, Event, vCalAddress

    invitation = Calendar.from_ical(request)
    [asked] = invitation.events
    [invited] = asked.attendees
    who = attendee or str(invited).removeprefix("mailto:")
    event = Event()
    for name in ("UID", "SEQUENCE", "DTSTART", "DTEND", "ORGANIZER", "SUMMARY", "LOCATION"):
        if name in asked:
            event[name] = asked[name]
    event.add("DTSTAMP", WHEN)
    answering = vCalAddress(f"mailto:{who}")
    answering.params["CN"] = invited.params.get("CN", "Le Contact")
    answering.params["PARTSTAT"] = partstat
    event.add("ATTENDEE", answering)
    if comment:
        event.add("COMMENT", comment)
    reply = Calendar()
    reply.add("PRODID", "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN")
    reply.add("VERSION", "2.0")
    reply.add("METHOD", "REPLY")
    for zone in invitation.timezones:
        reply.add_component(zone)
    reply.add_component(event)
    return reply.to_ical().decode()
