"""compose_email: structure, encodings, exact Message-ID and header-injection safety."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import Attachment, OutgoingEmail
from channels.mime import compose_email, envelope_address, single_line

SENDER = "Synergie – Métropole <synergie@metropole.example>"
ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    "UID:atelier-1@synergie.example\r\nSUMMARY:Atelier d'écologie industrielle\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
).encode()
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)

MakeEmail = Callable[..., OutgoingEmail]


def parse(raw: bytes) -> EmailMessage:
    """Parse bytes the way a modern mail client would (RFC 2047 decoded headers)."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def content(part: MIMEPart) -> str:
    """Return a text part's decoded content with the wire's CRLFs turned back into LFs."""
    return str(part.get_content()).replace("\r\n", "\n")


def header_names(raw: bytes) -> list[str]:
    """Return the top-level header names, in order, straight from the bytes."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if not line[:1].isspace()]


def test_text_and_html_form_an_alternative_with_a_real_text_part(make_email: MakeEmail) -> None:
    raw = compose_email(make_email(1), sender=SENDER, date=NOW)
    message = parse(raw)

    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert content(plain) == make_email(1).text
    assert "<p>" not in content(plain)
    assert html.get_content_type() == "text/html"
    assert content(html) == make_email(1).html


def test_text_only_message_is_a_single_part(make_email: MakeEmail) -> None:
    message = parse(compose_email(make_email(1, html=""), sender=SENDER, date=NOW))

    assert message.get_content_type() == "text/plain"
    assert message["MIME-Version"] == "1.0"
    assert content(message) == make_email(1).text


def test_calendar_alternative_and_attachments_round_trip(make_email: MakeEmail) -> None:
    pdf = bytes(range(256)) * 20
    email = make_email(
        2,
        alternatives=((ICS, "text/calendar; method=REQUEST; charset=utf-8"),),
        attachments=(
            Attachment("Programme d'été.pdf", pdf, "application/pdf"),
            Attachment("invitation.ics", ICS, "application/ics"),
        ),
    )
    message = parse(compose_email(email, sender=SENDER, date=NOW))

    assert message.get_content_type() == "multipart/mixed"
    alternative, programme, invitation = message.iter_parts()
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    calendar = list(alternative.iter_parts())[2]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_payload(decode=True) == ICS  # byte for byte, CRLFs included
    assert programme.get_filename() == "Programme d'été.pdf"
    assert programme.get_content_disposition() == "attachment"
    assert programme.get_payload(decode=True) == pdf
    assert invitation.get_content_type() == "application/ics"
    assert invitation.get_payload(decode=True) == ICS


def test_headers_are_set_once_and_message_id_is_exact(make_email: MakeEmail) -> None:
    email = make_email(3)
    raw = compose_email(email, sender=SENDER, reply_to="contact@metropole.example", date=NOW)
    names = [name.lower() for name in header_names(raw)]
    message = parse(raw)

    for name in ("message-id", "date", "from", "to", "subject", "reply-to", "mime-version"):
        assert names.count(name) == 1, name
    assert re.search(rb"^Message-ID: <3\.outbox@synergie\.example>\r$", raw, re.M)
    assert message["Date"].datetime == NOW
    assert message["Reply-To"] == "contact@metropole.example"
    assert message["List-Unsubscribe"] == "<https://synergie.example/u/3>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_non_ascii_quotes_and_angle_brackets_survive_in_names(make_email: MakeEmail) -> None:
    email = make_email(
        4, to_name='Zoé "La Patronne" <Dupré>, SAS', subject="Réunion « Synergie » <2025>"
    )
    raw = compose_email(email, sender=SENDER, date=NOW)
    message = parse(raw)

    assert raw.isascii()  # everything non-ASCII went through RFC 2047 / QP / base64
    to = message["To"].addresses
    assert len(to) == 1
    assert to[0].display_name == 'Zoé "La Patronne" <Dupré>, SAS'
    assert to[0].addr_spec == "contact4@entreprise.example"
    assert message["From"].addresses[0].display_name == "Synergie – Métropole"
    assert message["From"].addresses[0].addr_spec == "synergie@metropole.example"
    assert message["Subject"] == "Réunion « Synergie » <2025>"


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\x85", "\x0b", "\x00"])
def test_line_breaks_cannot_inject_headers(make_email: MakeEmail, breaker: str) -> None:
    email = make_email(
        5,
        subject=f"Bonjour{breaker}Bcc: victim@evil.example",
        to_name=f"Jean{breaker}Bcc: victim@evil.example",
        headers={"List-Unsubscribe": f"<https://x.example/u>{breaker}Bcc: victim@evil.example"},
        attachments=(Attachment(f"a{breaker}Bcc: x.pdf", b"%PDF", "application/pdf"),),
    )
    raw = compose_email(
        email, sender=f'"Synergie{breaker}Bcc: victim@evil.example" <s@x.example>', date=NOW
    )
    message = parse(raw)

    assert "bcc" not in [name.lower() for name in header_names(raw)]
    assert message["Bcc"] is None
    assert message["Subject"] == "Bonjour Bcc: victim@evil.example"
    assert message["To"].addresses[0].display_name == "Jean Bcc: victim@evil.example"
    assert message["To"].addresses[0].addr_spec == "contact5@entreprise.example"
    assert b"\r\nBcc:" not in raw and b"\nBcc:" not in raw
    assert re.search(rb"[^\r]\n", raw) is None  # CRLF only, no bare LF anywhere


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(max_size=120),
    name=st.text(max_size=60),
    value=st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
)
def test_any_text_in_headers_yields_the_same_header_set(
    subject: str, name: str, value: str
) -> None:
    email = OutgoingEmail(
        key="k",
        to="someone@entreprise.example",
        to_name=name,
        subject=subject,
        text="t",
        html="",
        message_id="<k@synergie.example>",
        headers={"X-Campaign": value},
    )
    raw = compose_email(email, sender=SENDER, date=NOW)

    assert sorted(n.lower() for n in header_names(raw)) == sorted(
        [
            "content-transfer-encoding",
            "content-type",
            "date",
            "from",
            "message-id",
            "mime-version",
            "subject",
            "to",
            "x-campaign",
        ]
    )
    message = parse(raw)
    assert message["To"].addresses[0].addr_spec == "someone@entreprise.example"
    assert message["Message-ID"] == "<k@synergie.example>"


def test_reply_to_can_be_overridden_per_message(make_email: MakeEmail) -> None:
    email = make_email(6, headers={"Reply-To": "Chargée de mission <cm@metropole.example>"})
    raw = compose_email(email, sender=SENDER, reply_to="contact@metropole.example", date=NOW)

    assert [n.lower() for n in header_names(raw)].count("reply-to") == 1
    reply_to = parse(raw)["Reply-To"].addresses[0]
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Chargée de mission",
        "cm@metropole.example",
    )


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"message_id": "no-brackets@synergie.example"}, "message_id"),
        ({"headers": {"Message-ID": "<other@x.example>"}}, "Message-ID"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"headers": {"X-A\r\nBcc": "x"}}, "invalid header name"),
        ({"to": "not an address"}, "not a single e-mail address"),
        ({"to": "a@x.example, b@x.example"}, "not a single e-mail address"),
        ({"to": "zoé@entreprise.example"}, "non-ASCII local part"),
    ],
)
def test_unsendable_messages_raise_value_error(
    make_email: MakeEmail, overrides: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        compose_email(make_email(7, **overrides), sender=SENDER, date=NOW)


def test_naive_date_is_refused(make_email: MakeEmail) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compose_email(make_email(8), sender=SENDER, date=datetime(2025, 1, 1))


def test_internationalised_domain_is_sent_as_punycode() -> None:
    assert envelope_address("Mairie <accueil@mairie-épinal.example>") == (
        "accueil@xn--mairie-pinal-heb.example"
    )
    assert envelope_address(" bare@x.example ") == "bare@x.example"


def test_single_line_collapses_runs_of_breaks() -> None:
    assert single_line("a\r\n\r\nb\tc\u2029d") == "a b\tc d"


def test_a_long_accented_subject_is_split_into_short_encoded_words() -> None:
    import email
    from email.header import decode_header, make_header

    subject = "Proposition de rencontre pour Cartonnages de la Vouge – « Économie positive » " * 2
    message = OutgoingEmail(
        key="k",
        to="a@example.org",
        subject=subject,
        text="t",
        html="",
        message_id="<x@example.org>",
    )
    raw = compose_email(message, sender="eit@example.org")
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    words = [w for w in head.replace("\r\n ", " ").split() if w.startswith("=?")]
    assert len(words) > 1 and all(len(w) <= 75 for w in words)
    parsed = email.message_from_bytes(raw)
    assert str(make_header(decode_header(parsed["Subject"]))) == subject.strip()


@settings(max_examples=300, deadline=None)
@given(
    # Text that needs encoded words (ASCII is folded at spaces instead).
    subject=st.text(min_size=1, max_size=300).filter(
        lambda s: not single_line(s).strip().isascii()
    ),
    header=st.sampled_from(["Subject", "X-Synergie-Campagne-Et-Etape"]),
)
def test_encoded_words_decode_to_the_text_and_keep_their_lengths(subject: str, header: str) -> None:
    from email.header import decode_header, make_header

    message = OutgoingEmail(
        key="k", to="a@example.org", subject=subject, text="t", html="", message_id="<x@example.org>",
        headers={header: subject} if header != "Subject" else {},
    )  # fmt: skip
    head = compose_email(message, sender="eit@example.org").split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{header}: "))
    field = [lines[start]] + list(
        itertools.takewhile(lambda line: line.startswith(" "), lines[start + 1 :])
    )
    value = " ".join(line.strip() for line in field)[len(header) + 2 :]
    assert all(len(line) <= 76 for line in field)
    assert all(len(word) <= 75 for word in value.split())
    assert str(make_header(decode_header(value))) == single_line(subject).strip()


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example",
        "o.brien+tag@sous-domaine.mairie.example",
        "x_y=z@localhost",
        "UPPER@CASE.EXAMPLE",
    ],
)
def test_plain_addresses_take_the_fast_path_to_the_same_answer(address: str) -> None:
    from email.utils import parseaddr

    assert envelope_address(address) == parseaddr(address)[1] == address
    assert envelope_address(f"Nom <{address}>") == address


def _to_header(raw: bytes) -> tuple[list[str], str]:
    """The folded lines of the To field, and its value decoded by the stdlib's RFC 2047 decoder."""
    from email.header import decode_header, make_header

    lines = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("To: "))
    field = [lines[start]] + list(
        itertools.takewhile(lambda line: line.startswith(" "), lines[start + 1 :])
    )
    # compat32 keeps the raw value; decode_header joins adjacent encoded words as RFC 2047 says
    # (the modern parser puts a space between encoded words of a phrase, even its own).
    raw_value = message_from_bytes(raw)["To"]
    return field, str(make_header(decode_header(raw_value)))


@pytest.mark.parametrize(
    "name",
    [
        "é" * 200,  # issue 9: one 552-character encoded word
        "Établissements Dupré-Martin et Fils, négoce de bois de la Côte-d'Or " * 3,
    ],
)
def test_a_long_non_ascii_name_becomes_encoded_words_of_at_most_75_characters(name: str) -> None:
    message = OutgoingEmail(key="k", to="a@example.org", to_name=name, subject="s", text="t",
                            html="", message_id="<x@example.org>")  # fmt: skip
    raw = compose_email(message, sender=SENDER, date=NOW)

    field, decoded = _to_header(raw)
    words = [w for line in field for w in line.split() if w.startswith("=?")]
    assert len(words) > 1 and all(len(word) <= 75 for word in words)
    assert all(len(line) <= 78 for line in field)
    assert decoded == f"{name.strip()} <a@example.org>"


def test_a_name_without_spaces_is_folded_under_the_line_limits() -> None:
    name = "x" * 2000  # issue 9: a 2,004-character header line (RFC 5322 allows 998)
    message = OutgoingEmail(key="k", to="a@example.org", to_name=name, subject="S" * 2000,
                            text="t", html="", message_id="<x@example.org>")  # fmt: skip
    raw = compose_email(message, sender=f"{'y' * 300} <eit@example.org>", date=NOW)

    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\r\n")) <= 78
    field, decoded = _to_header(raw)
    assert decoded == f"{name} <a@example.org>"
    parsed = parse(raw)
    assert parsed["Subject"] == "S" * 2000
    assert parsed["To"].addresses[0].addr_spec == "a@example.org"
    assert parsed["From"].addresses[0].addr_spec == "eit@example.org"
