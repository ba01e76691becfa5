"""Signed link tokens: round trip, every kind of tampering refused, unsubscribe URL and headers."""

from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path

import pytest

from models.enums import Channel
from synergie.messaging.links import (
    UNSUBSCRIBE,
    ExpiredToken,
    InvalidToken,
    TokenClaims,
    read_token,
    sign_token,
    unsubscribe_headers,
    unsubscribe_token,
    unsubscribe_url,
)
from synergie.settings import Settings, SettingsError
from tests.factories import NOW

KEY = b"k" * 48
PUBLIC_ID = "0f3c2a9be4d84b6f9c1d2e3f4a5b6c7d"
ALPHABET = string.ascii_letters + string.digits + "-_."


@pytest.fixture
def https_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="une-clé-de-test-longue-et-aléatoire-0123456789",  # type: ignore[arg-type]
        public_url="https://eit.example.org/",
        mail_from="Économie positive <eit@example.org>",
    )


def test_a_token_reads_back_its_subject_and_channel() -> None:
    token = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email")
    assert read_token(token, key=KEY, purpose=UNSUBSCRIBE) == TokenClaims(
        purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email"
    )
    bare = sign_token(key=KEY, purpose="rsvp", subject=PUBLIC_ID)
    assert read_token(bare, key=KEY, purpose="rsvp").channel is None


def test_a_token_is_short_url_safe_versioned_and_hides_no_row_id() -> None:
    token = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel=Channel.SMS)
    assert token.startswith("v1.")
    assert set(token) <= set(ALPHABET)
    assert len(token) <= 100
    assert read_token(token, key=KEY, purpose=UNSUBSCRIBE).channel == "sms"


def test_every_character_replaced_by_any_other_is_refused() -> None:
    token = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email")
    accepted = []
    for position, original in enumerate(token):
        for replacement in ALPHABET + "=+/ \n":
            if replacement == original:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            try:
                read_token(tampered, key=KEY, purpose=UNSUBSCRIBE)
            except InvalidToken:
                continue
            accepted.append(tampered)
    # Includes the last character of each base64 part, whose unused bits must not be ignored.
    assert accepted == []


def test_truncated_or_extended_tokens_are_refused() -> None:
    token = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email")
    for length in range(len(token)):
        with pytest.raises(InvalidToken):
            read_token(token[:length], key=KEY, purpose=UNSUBSCRIBE)
    for suffix in ("A", ".", "=", "==", ".AAAA", "\n"):
        with pytest.raises(InvalidToken):
            read_token(token + suffix, key=KEY, purpose=UNSUBSCRIBE)


def test_a_token_for_another_purpose_or_key_is_refused() -> None:
    token = sign_token(key=KEY, purpose="rsvp", subject=PUBLIC_ID, channel="email")
    with pytest.raises(InvalidToken):
        read_token(token, key=KEY, purpose=UNSUBSCRIBE)
    with pytest.raises(InvalidToken):
        read_token(token, key=b"another key entirely", purpose="rsvp")
    assert read_token(token, key=KEY, purpose="rsvp").subject == PUBLIC_ID


def test_a_swapped_payload_does_not_carry_its_signature_along() -> None:
    mine = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email")
    other = sign_token(key=KEY, purpose=UNSUBSCRIBE, subject="f" * 32, channel="sms")
    spliced = ".".join([*other.split(".")[:2], mine.split(".")[2]])
    with pytest.raises(InvalidToken):
        read_token(spliced, key=KEY, purpose=UNSUBSCRIBE)


@pytest.mark.parametrize(
    "garbage",
    ["", "v1", "v1..", "v2.YWJj.YWJj", "V1.YWJj.YWJj", "x" * 10_000, "v1.é.é", "v1.YWJj.YWJj.YWJj"],
)
def test_garbage_is_refused_with_a_french_message(garbage: str) -> None:
    with pytest.raises(InvalidToken, match="Ce lien n'est pas valide"):
        read_token(garbage, key=KEY, purpose=UNSUBSCRIBE)


def test_an_expiring_token_is_refused_once_expired() -> None:
    token = sign_token(
        key=KEY, purpose="survey", subject=PUBLIC_ID, expires_at=NOW + timedelta(days=30)
    )
    claims = read_token(token, key=KEY, purpose="survey", now=NOW)
    assert claims.expires_at == NOW + timedelta(days=30)
    with pytest.raises(ExpiredToken, match="expiré"):
        read_token(token, key=KEY, purpose="survey", now=NOW + timedelta(days=30))
    with pytest.raises(ValueError, match="now is required"):
        read_token(token, key=KEY, purpose="survey")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", ""),
        ("subject", "a b"),
        ("subject", "a\nb"),
        ("channel", "e\rmail"),
        ("purpose", "RSVP"),
    ],
)
def test_signing_refuses_fields_that_could_break_a_link(field: str, value: str) -> None:
    arguments = {"key": KEY, "purpose": UNSUBSCRIBE, "subject": PUBLIC_ID, "channel": "email"}
    arguments[field] = value
    with pytest.raises(ValueError):
        sign_token(**arguments)  # type: ignore[arg-type]


def test_signing_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign_token(key=b"", purpose=UNSUBSCRIBE, subject=PUBLIC_ID)


def test_the_unsubscribe_url_points_at_the_portal_with_a_genuine_token(
    https_settings: Settings,
) -> None:
    url = unsubscribe_url(https_settings, PUBLIC_ID, Channel.EMAIL)
    prefix = "https://eit.example.org/desinscription/"
    assert url.startswith(prefix)
    claims = read_token(
        url.removeprefix(prefix), key=https_settings.link_signing_key, purpose=UNSUBSCRIBE
    )
    assert (claims.subject, claims.channel) == (PUBLIC_ID, "email")


def test_unsubscribe_headers_are_single_lines_with_the_https_url_and_the_mailto(
    https_settings: Settings,
) -> None:
    headers = unsubscribe_headers(https_settings, PUBLIC_ID, Channel.EMAIL)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = unsubscribe_url(https_settings, PUBLIC_ID, Channel.EMAIL)
    token = url.rsplit("/", 1)[1]
    assert headers["List-Unsubscribe"] == (
        f"<{url}>, <mailto:eit@example.org?subject=desinscription%20{token}>"
    )
    for value in headers.values():
        assert value.isascii() and value.isprintable()  # no CR, LF or other control character
        assert "\r" not in value and "\n" not in value


def test_unsubscribe_headers_refuse_a_public_url_with_a_line_break(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, secret_key="k" * 40,  # type: ignore[arg-type]
        public_url="https://eit.example.org\r\nBcc: victim@example.org",
    )  # fmt: skip
    with pytest.raises(ValueError, match="SYNERGIE_PUBLIC_URL"):
        unsubscribe_headers(settings, PUBLIC_ID, Channel.EMAIL)


def test_production_refuses_a_plain_http_portal(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, secret_key="k" * 40,  # type: ignore[arg-type]
        environment="production", public_url="http://eit.example.org",
    )  # fmt: skip
    with pytest.raises(SettingsError, match="https://"):
        unsubscribe_headers(settings, PUBLIC_ID, Channel.EMAIL)
    with pytest.raises(SettingsError, match="https://"):
        unsubscribe_url(settings, PUBLIC_ID, Channel.EMAIL)


def test_an_address_without_mailbox_still_gets_the_https_link(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, secret_key="k" * 40,  # type: ignore[arg-type]
        public_url="https://eit.example.org", mail_from="Économie positive",
    )  # fmt: skip
    header = unsubscribe_headers(settings, PUBLIC_ID, Channel.EMAIL)["List-Unsubscribe"]
    assert (
        header.startswith("<https://eit.example.org/desinscription/v1.") and "mailto" not in header
    )


def test_production_refuses_a_short_secret_key_in_french(tmp_path: Path) -> None:
    # Issue 9: a one-character SYNERGIE_SECRET_KEY was accepted in production.
    for short in ("k", "k" * 31):
        settings = Settings(data_dir=tmp_path, secret_key=short, environment="production")  # type: ignore[arg-type]
        with pytest.raises(SettingsError, match="trop courte.*au moins 32 octets"):
            _ = settings.link_signing_key
    assert Settings(
        data_dir=tmp_path, secret_key="k" * 32, environment="production"
    ).link_signing_key  # type: ignore[arg-type]
    # In development a short key is tolerated (tests, demos).
    assert Settings(data_dir=tmp_path, secret_key="k").link_signing_key == b"k"  # type: ignore[arg-type]


def test_links_signed_before_a_key_rotation_are_still_accepted(tmp_path: Path) -> None:
    # Issue 9: changing the key broke every link ever sent.
    old, new = "o" * 40, "n" * 40
    before = Settings(data_dir=tmp_path, secret_key=old)  # type: ignore[arg-type]
    sent = unsubscribe_token(before, PUBLIC_ID, Channel.EMAIL)
    after = Settings(data_dir=tmp_path, secret_key=new, secret_key_previous=old)  # type: ignore[arg-type]
    key, *previous = after.link_verification_keys
    assert key == new.encode() and previous == [old.encode()]
    assert (
        read_token(sent, key=key, purpose=UNSUBSCRIBE, previous_keys=previous).subject == PUBLIC_ID
    )
    with pytest.raises(InvalidToken):
        read_token(sent, key=key, purpose=UNSUBSCRIBE)  # without the previous key: refused
    # New links are signed with the new key alone.
    fresh = unsubscribe_token(after, PUBLIC_ID, Channel.EMAIL)
    assert read_token(fresh, key=new.encode(), purpose=UNSUBSCRIBE).subject == PUBLIC_ID
    with pytest.raises(InvalidToken):
        read_token(fresh, key=old.encode(), purpose=UNSUBSCRIBE)
    forged = sign_token(key=b"x" * 40, purpose=UNSUBSCRIBE, subject=PUBLIC_ID, channel="email")
    with pytest.raises(InvalidToken):
        read_token(forged, key=key, purpose=UNSUBSCRIBE, previous_keys=previous)
