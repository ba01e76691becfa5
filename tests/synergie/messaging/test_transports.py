"""Backends chosen from the settings: files by default, real transports only when fully configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import OutgoingSms
from channels.filebased import FileEmailBackend, FileSmsBackend
from channels.twilio_sms import TwilioSmsBackend
from synergie.messaging.transports import email_backend, sms_backend
from synergie.settings import Settings, SettingsError
from tests.servers.twilio_server import FakeTwilio


def test_by_default_nothing_leaves_the_machine(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert isinstance(email_backend(settings, password=None), FileEmailBackend)
    assert isinstance(sms_backend(settings, auth_token=None), FileSmsBackend)


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"email_backend": "smtp"}, "SYNERGIE_SMTP_HOST"),
        (
            {"email_backend": "smtp", "smtp_host": "smtp.example.org", "smtp_user": "u"},
            "SYNERGIE_SMTP_PASSWORD",
        ),
    ],
)
def test_a_half_configured_smtp_is_refused_with_what_is_missing(
    tmp_path: Path, values: dict, missing: str
) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettingsError, match=missing):
        email_backend(Settings(data_dir=tmp_path, **values), password=None)


def test_a_half_configured_twilio_is_refused_with_what_is_missing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, sms_backend="twilio", twilio_account_sid="AC1")
    with pytest.raises(SettingsError, match="SYNERGIE_TWILIO_AUTH_TOKEN.*SYNERGIE_TWILIO_FROM"):
        sms_backend(settings, auth_token=None)


def test_twilio_settings_reach_a_twilio_speaking_server(tmp_path: Path) -> None:
    with FakeTwilio() as server:
        settings = Settings(
            data_dir=tmp_path, sms_backend="twilio", twilio_account_sid=server.account_sid,
            twilio_from="+33639980000", twilio_api_url=server.url,
        )  # fmt: skip
        backend = sms_backend(settings, auth_token=server.auth_token)
        assert isinstance(backend, TwilioSmsBackend)
        [result] = backend.send_messages([OutgoingSms(key="k1", to="+33639981234", body="Bonjour")])
        assert result.ok and result.provider_id and result.provider_id.startswith("SM")
        assert [(m["to"], m["from"], m["body"]) for m in server.messages] == [
            ("+33639981234", "+33639980000", "Bonjour")
        ]
