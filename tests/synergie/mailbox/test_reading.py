"""What ``read_mail`` makes of a mail's bytes alone: no database, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from synergie.mailbox.reading import (
    AutoReply,
    CalendarAnswer,
    DeliveryReport,
    Unrecognised,
    UnsubscribeRequest,
    read_mail,
)
from tests.synergie.mailbox.mails import (
    GARBAGE,
    dsn,
    gmail_reply,
    out_of_office,
    outlook_reply,
    plain_mail,
    reply_ics,
)

SENT = (
    b"From: Economie positive <eit@example.org>\r\nTo: p0@example.org\r\n"
    b"Subject: Votre entreprise\r\nMessage-ID: <0123456789abcdef0123456789abcdef@Example.ORG>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour\r\n"
)
START = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
TOKEN = "v1.YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODkfZW1haWwf.AbCdEfGhIjKlMnOpQrStUv"


@pytest.mark.parametrize("whole", [False, True])
def test_a_postfix_dsn_gives_each_recipient_and_the_original_message_id(whole: bool) -> None:
    read = read_mail(dsn(SENT, recipient="P0@example.org", whole_message=whole))
    assert isinstance(read.kind, DeliveryReport)
    # The domain's case is the server's to change, never the local part's.
    assert read.kind.original_message_ids == ("<0123456789abcdef0123456789abcdef@example.org>",)
    [block] = read.kind.recipients
    assert (block.action, block.status, block.final_recipient) == (
        "failed",
        "5.1.1",
        "p0@example.org",
    )
    assert block.permanent and "User unknown" in block.diagnostic


def test_a_delay_is_not_permanent_and_a_vague_status_is_made_precise() -> None:
    delayed = read_mail(dsn(SENT, recipient="p0@example.org", action="delayed", status="4.4.7"))
    assert isinstance(delayed.kind, DeliveryReport) and not delayed.kind.recipients[0].permanent
    vague = read_mail(dsn(SENT, recipient="p0@example.org", status="5.0.0",
                          diagnostic="smtp; 550 5.2.1 mailbox disabled"))  # fmt: skip
    assert isinstance(vague.kind, DeliveryReport) and vague.kind.recipients[0].status == "5.2.1"


def test_a_dsn_without_returned_headers_still_finds_a_quoted_message_id() -> None:
    raw = dsn(SENT, recipient="p0@example.org").replace(
        b"Content-Type: text/rfc822-headers", b"Content-Type: text/plain"
    )
    read = read_mail(raw)
    assert isinstance(read.kind, DeliveryReport)
    assert "<0123456789abcdef0123456789abcdef@example.org>" in read.kind.original_message_ids
    assert (
        read.message_id not in read.kind.original_message_ids
    )  # the report's own is not a candidate


@pytest.mark.parametrize("client", ["outlook", "gmail"])
def test_calendar_answers_are_found_in_outlook_and_gmail_shapes(client: str) -> None:
    ics = reply_ics(uid="u@example.org", attendee="a@example.org", partstat="ACCEPTED",
                    start=START, outlook=client == "outlook")  # fmt: skip
    raw = (outlook_reply if client == "outlook" else gmail_reply)(sender="a@example.org", ics=ics)
    read = read_mail(raw)
    assert isinstance(read.kind, CalendarAnswer) and b"METHOD:REPLY" in read.kind.ics
    assert read.sender == "a@example.org"


def test_an_ics_attachment_alone_counts_but_a_forwarded_request_does_not() -> None:
    from email.message import EmailMessage

    ics = reply_ics(uid="u@example.org", attendee="a@example.org", partstat="DECLINED", start=START)
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.org", "Refusé"
    message.set_content("Voir la pièce jointe.")
    # Folded as some clients write it: METHOD:RE + CRLF + space + PLY.
    folded = ics.replace("METHOD:REPLY", "METHOD:RE\r\n PLY")
    message.add_attachment(folded.encode(), maintype="application", subtype="octet-stream",
                           filename="reponse.ICS")  # fmt: skip
    assert isinstance(read_mail(bytes(message)).kind, CalendarAnswer)
    forwarded = EmailMessage()
    forwarded["From"], forwarded["Subject"] = "a@example.org", "TR: Visite"
    forwarded.set_content("Pour info")
    forwarded.add_attachment(ics.replace("METHOD:REPLY", "METHOD:REQUEST").encode(),
                             maintype="text", subtype="calendar", filename="invite.ics")  # fmt: skip
    assert isinstance(read_mail(bytes(forwarded)).kind, Unrecognised)


@pytest.mark.parametrize(
    ("subject", "body", "token"),
    [
        (f"desinscription {TOKEN}", "", TOKEN),  # what the List-Unsubscribe mailto writes
        (f"RE: désinscription {TOKEN}", "", TOKEN),
        ("Désinscription", "", None),  # the sender's own address, then
        ("unsubscribe", f"please: {TOKEN}", TOKEN),
        ("STOP", "", None),
    ],
)
def test_unsubscribe_requests(subject: str, body: str, token: str | None) -> None:
    read = read_mail(plain_mail(sender="p@example.org", to="eit@example.org", subject=subject,
                                body=body))  # fmt: skip
    assert read.kind == UnsubscribeRequest(token)


@pytest.mark.parametrize(
    "subject",
    [
        "Désinscription de notre ancien collègue",  # a person writing: staff read it
        "Re: Votre entreprise et l'économie positive",
        "Absence de réponse à votre courrier",
    ],
)
def test_a_person_writing_is_for_staff_even_when_quoting_our_token(subject: str) -> None:
    # A reply quotes our message, unsubscribe link (and its token) included.
    body = f"Bonjour, une question.\n> Se désinscrire : https://x.example/desinscription/{TOKEN}"
    read = read_mail(plain_mail(sender="p@example.org", to="eit@example.org", subject=subject,
                                body=body))  # fmt: skip
    assert isinstance(read.kind, Unrecognised)


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Votre entreprise", {"Auto_Submitted": "auto-replied"}),
        ("Votre entreprise", {"Auto_Submitted": "auto-generated; owner-email=x@example.org"}),
        ("Votre entreprise", {"X_Autoreply": "yes"}),
        ("Votre entreprise", {"Precedence": "auto_reply"}),
        ("Absence : Votre entreprise", {}),
        ("Réponse automatique : Votre entreprise", {}),
        ("Out of Office: Votre entreprise", {}),
        ("Automatic reply: Votre entreprise", {}),
        ("RE: Absence du bureau", {}),
    ],
)
def test_automatic_replies_are_recognised(subject: str, headers: dict[str, str]) -> None:
    raw = plain_mail(sender="p@example.org", to="eit@example.org", subject=subject, **headers)
    assert isinstance(read_mail(raw).kind, AutoReply)


def test_auto_submitted_no_is_a_person() -> None:
    raw = plain_mail(sender="p@example.org", to="eit@example.org", subject="Question",
                     Auto_Submitted="no")  # fmt: skip
    assert isinstance(read_mail(raw).kind, Unrecognised)
    assert isinstance(read_mail(out_of_office(sender="p@example.org", subject="x")).kind, AutoReply)


def test_a_read_receipt_is_automatic() -> None:
    raw = (
        b"From: p@example.org\r\nSubject: Lu : Votre entreprise\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nLu.\r\n--b\r\n"
        b"Content-Type: message/disposition-notification\r\n\r\n"
        b"Final-Recipient: rfc822; p@example.org\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
        b"\r\n--b--\r\n"
    )
    assert isinstance(read_mail(raw).kind, AutoReply)


@pytest.mark.parametrize("raw", [GARBAGE, b"", b"   \r\n", b"\xff\xfe\x00\x01" * 100])
def test_unreadable_bytes_are_for_staff_and_never_raise(raw: bytes) -> None:
    read = read_mail(raw)
    assert isinstance(read.kind, Unrecognised)
    assert "illisible" in read.kind.why or "vide" in read.kind.why


def test_a_broken_report_never_raises() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n\xff\xfe\r\n--b--\r\n"
    )
    assert isinstance(read_mail(raw).kind, Unrecognised)
