"""Synergie's settings: read once from SYNERGIE_* environment variables and passed down."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_BYTES = 32
_NEW_KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message tells staff what to set."""


class Settings(BaseSettings):
    """Every knob of Synergie, one place; build it once and pass it to what needs it."""

    model_config = SettingsConfigDict(env_prefix="SYNERGIE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    timezone: str = "Europe/Paris"
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = Field(default=None, repr=False)
    # The key before a rotation: links it signed (in messages already sent) are still accepted.
    secret_key_previous: SecretStr | None = Field(default=None, repr=False)

    # The programme, as named in messages.
    authority_name: str = "Communauté de communes de Gevrey-Chambertin et de Nuits-Saint-Georges"
    programme_name: str = "Économie positive"
    officer_name: str = "La chargée de mission prévention des déchets"
    officer_email: str = "eit@example.org"
    officer_phone: str = "03 53 01 00 00"
    partner_name: str = "la Jeune Chambre Économique locale"
    # RGPD article 14, in the first message: who holds the data, whom to write to, for how long.
    authority_contact: str = (
        ""  # e.g. "Hôtel de ville, 21700 Nuits-Saint-Georges" (empty: officer_email)
    )
    dpo_email: str = ""  # the data protection officer (empty: officer_email)
    retention_months: int = Field(default=36, ge=1, le=240)

    # E-mail: the file outbox by default, so nothing reaches a real person by accident.
    email_backend: Literal["file", "smtp", "memory"] = "file"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = Field(default=None, repr=False)
    smtp_timeout: float = Field(default=30.0, gt=0, le=600)
    mail_from: str = "Économie positive <eit@example.org>"
    reply_to: str | None = None
    templates_dir: Path | None = None
    send_lease_seconds: int = Field(default=300, ge=1, le=86_400)
    max_send_attempts: int = Field(default=5, ge=1, le=50)
    retry_backoff_seconds: float = Field(default=60.0, gt=0, le=3600)

    # Calls and visits.
    call_after_days: int = Field(default=7, ge=0, le=365)  # days after the mailing before calling
    call_minutes: int = Field(default=15, ge=1, le=240)  # staff time booked per call logged
    # A volunteer's call link works until the end of the call day plus this many days.
    call_link_days: int = Field(default=3, ge=0, le=60)
    # Staff pages: how long a sign-in link and a session last.
    staff_sign_in_minutes: int = Field(default=15, ge=1, le=120)
    staff_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    # An upload whose import shows no sign of life for this long is reported as stopped.
    upload_stale_seconds: int = Field(default=120, ge=30, le=86_400)
    visit_travel_buffer_minutes: int = Field(default=30, ge=0, le=480)
    visit_notice_working_days: int = Field(default=2, ge=0, le=60)
    visit_horizon_days: int = Field(default=90, ge=7, le=730)
    # Road km between two sites ≈ great-circle km × this factor (1.3 is the usual rule of thumb
    # for French roads; set it from a few real routes of the territory).
    road_factor: float = Field(default=1.3, ge=1.0, le=3.0)

    # Quarterly meetings: staff time per meeting (slides, testimony, room, facilitation, drinks).
    meeting_hours: float = Field(default=10.0, ge=0, le=24)
    # The flow inventory: staff time booked per questionnaire reviewed (the seed budgets 15 h for
    # the flows of ~30 visited companies), how long the questionnaire link works.
    inventory_review_hours: float = Field(default=0.5, gt=0, le=24)
    inventory_link_days: int = Field(default=365, ge=1, le=3650)
    # Follow-up surveys: one reminder this many days after the invitation, closed after that many.
    survey_reminder_days: int = Field(default=7, ge=1, le=365)
    survey_close_days: int = Field(default=30, ge=1, le=365)

    # SMS: the file outbox by default too.
    sms_backend: Literal["file", "twilio", "memory"] = "file"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr | None = Field(default=None, repr=False)
    twilio_from: str = ""  # a number in E.164, or a messaging service SID (MG…)
    twilio_api_url: str = ""  # empty: Twilio itself; set to reach a Twilio-compatible server

    # The mailbox that receives what comes back (bounces, unsubscribe mails, calendar answers).
    imap_host: str = ""
    imap_port: int | None = Field(default=None, ge=1, le=65535)  # none: 993 (ssl), else 143
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"  # none: a server on 127.0.0.1 only
    imap_user: str = ""
    imap_password: SecretStr | None = Field(default=None, repr=False)
    imap_folder: str = "INBOX"
    imap_archive: str = "Synergie"  # the folder holding one sub-folder per kind of mail
    imap_timeout: float = Field(default=30.0, gt=0, le=600)
    imap_ca_file: Path | None = None  # a private CA to trust; by default the system's

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:  # ZoneInfoNotFoundError or ValueError on odd input
            raise ValueError(
                f"fuseau horaire inconnu : {value!r} (exemple : Europe/Paris)"
            ) from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'synergie.db').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @cached_property  # read on every message
    def unsubscribe_mailbox(self) -> str:
        """The bare address of ``mail_from``, for ``mailto:`` unsubscribe links."""
        from email.utils import parseaddr

        return parseaddr(self.mail_from)[1]

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @cached_property
    def link_signing_key(self) -> bytes:
        """The key that signs links in messages: from the environment, or in development a file made once."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            key = self.secret_key.get_secret_value().encode()
            if self.environment == "production" and len(key) < MIN_SECRET_KEY_BYTES:
                raise SettingsError(
                    f"SYNERGIE_SECRET_KEY est trop courte ({len(key)} octets) : en production, elle "
                    f"doit faire au moins {MIN_SECRET_KEY_BYTES} octets aléatoires, sans quoi les liens "
                    f"des messages peuvent être contrefaits. Générez-en une : {_NEW_KEY_HINT}"
                )
            return key
        if self.environment == "production":
            raise SettingsError(
                "SYNERGIE_SECRET_KEY est obligatoire en production : définissez une clé longue et "
                f"aléatoire (par exemple : {_NEW_KEY_HINT})."
            )
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting together must not write two different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()

    @cached_property
    def link_verification_keys(self) -> tuple[bytes, ...]:
        """The keys a link may be signed with: the current one first, then the one before a rotation."""
        keys = [self.link_signing_key]
        if self.secret_key_previous is not None and self.secret_key_previous.get_secret_value():
            previous = self.secret_key_previous.get_secret_value().encode()
            if previous not in keys:
                keys.append(previous)
        return tuple(keys)

    def ensure_dirs(self) -> None:
        """Create the data dir and its sub-folders."""
        for folder in (self.data_dir, self.outbox_dir, self.reports_dir):
            folder.mkdir(parents=True, exist_ok=True)


def load_settings() -> Settings:
    """Read the settings from the environment, turning validation errors into one clear message."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SYNERGIE_{'_'.join(str(p) for p in err['loc']).upper()} : {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"Configuration invalide — {problems}") from exc
