"""Choosing the e-mail and SMS backends from the settings, and refusing a half-configured one."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.base import EmailBackend, OutgoingEmail, SmsBackend
from channels.errors import DeliveryError, SenderSideError
from channels.filebased import FileEmailBackend, FileSmsBackend
from channels.locmem import MemoryEmailBackend, MemorySmsBackend
from channels.mime import compose_email, envelope_address
from channels.smtp import SmtpEmailBackend
from channels.twilio_sms import TwilioSmsBackend
from synergie.settings import Settings, SettingsError


def check_email_settings(settings: Settings, *, password: str | None) -> None:
    """Raise SettingsError, in French, when the chosen e-mail backend lacks a setting."""
    if settings.email_backend != "smtp":
        return
    missing = []
    if not settings.smtp_host:
        missing.append("SYNERGIE_SMTP_HOST")
    if settings.smtp_user and not password:
        missing.append(
            "SYNERGIE_SMTP_PASSWORD (ou un bloc Prefect Secret « synergie-smtp-password »)"
        )
    if not settings.mail_from or "@" not in settings.mail_from:
        missing.append("SYNERGIE_MAIL_FROM")
    if missing:
        raise SettingsError(
            "envoi par SMTP demandé (SYNERGIE_EMAIL_BACKEND=smtp) mais il manque : "
            + ", ".join(missing)
            + ". Rien n'a été envoyé."
        )


# What the preflight composes when the caller has no message of its own to try.
_SAMPLE = OutgoingEmail(
    key="preflight", to="exemple@example.org", to_name="Prénom Nom", subject="Essai",
    text="Essai", html="<p>Essai</p>", message_id="<preflight@example.org>",
)  # fmt: skip


def check_email_transport(
    settings: Settings, *, password: str | None, sample: OutgoingEmail | None = None
) -> None:
    """Check, before anything is claimed, that our side can send: raise SettingsError in French if not.

    The From and Reply-To settings must each be one address; ``sample`` (a message of the
    run rendered for a made-up recipient) must compose with them; with SMTP a session is
    opened as a batch would (EHLO, STARTTLS, AUTH) and MAIL FROM is tried, then reset.
    """
    check_email_settings(settings, password=password)
    for name, value in (("SYNERGIE_MAIL_FROM", settings.mail_from),
                        ("SYNERGIE_REPLY_TO", settings.reply_to)):  # fmt: skip
        if value is None:
            continue
        try:
            envelope_address(value)
        except ValueError:
            raise SettingsError(
                f"{name} doit être une seule adresse e-mail, par exemple "
                f"« Économie positive <eit@example.org> », et non « {value} ». "
                "Rien n'a été envoyé."
            ) from None
    try:
        compose_email(
            sample or _SAMPLE, sender=settings.mail_from, reply_to=settings.reply_to,
            date=datetime.now(UTC),
        )  # fmt: skip
    except ValueError as exc:
        raise SettingsError(
            f"le message d'essai ne peut pas être composé ({exc}) : vérifiez SYNERGIE_MAIL_FROM, "
            "SYNERGIE_REPLY_TO et les modèles. Rien n'a été envoyé."
        ) from None
    backend = email_backend(settings, password=password)
    if isinstance(backend, SmtpEmailBackend):
        try:
            backend.probe()
        except SenderSideError as exc:
            raise SettingsError(
                f"le serveur SMTP {settings.smtp_host}:{settings.smtp_port} refuse nos envois "
                f"({exc}) : vérifiez SYNERGIE_SMTP_USER, le mot de passe, SYNERGIE_SMTP_SECURITY "
                "et SYNERGIE_MAIL_FROM (l'expéditeur doit être autorisé par le relais). "
                "Rien n'a été envoyé, aucun destinataire n'a été marqué."
            ) from None
        except DeliveryError as exc:
            raise SettingsError(
                f"le serveur SMTP {settings.smtp_host}:{settings.smtp_port} ne répond pas "
                f"({exc}) ; rien n'a été envoyé, réessayez plus tard."
            ) from None


def email_backend(settings: Settings, *, password: str | None) -> EmailBackend:
    """The backend the settings ask for: a file outbox by default, SMTP on purpose, memory in tests."""
    check_email_settings(settings, password=password)
    if settings.email_backend == "smtp":
        return SmtpEmailBackend(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user or None,
            password=password if settings.smtp_user else None,
            sender=settings.mail_from,
            reply_to=settings.reply_to,
            timeout=settings.smtp_timeout,
        )
    if settings.email_backend == "memory":
        return MemoryEmailBackend(sender=settings.mail_from, reply_to=settings.reply_to)
    return FileEmailBackend(
        directory=settings.outbox_dir / "email",
        sender=settings.mail_from,
        reply_to=settings.reply_to,
    )


def check_sms_settings(settings: Settings, *, auth_token: str | None) -> None:
    """Raise SettingsError, in French, when the chosen SMS backend lacks a setting."""
    if settings.sms_backend != "twilio":
        return
    missing = [
        name
        for name, value in (
            ("SYNERGIE_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            (
                "SYNERGIE_TWILIO_AUTH_TOKEN (ou un bloc Prefect Secret « synergie-twilio-auth-token »)",
                auth_token,
            ),
            ("SYNERGIE_TWILIO_FROM", settings.twilio_from),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            "envoi de SMS par Twilio demandé (SYNERGIE_SMS_BACKEND=twilio) mais il manque : "
            + ", ".join(missing)
            + ". Rien n'a été envoyé."
        )


def sms_backend(settings: Settings, *, auth_token: str | None) -> SmsBackend:
    """The SMS backend the settings ask for: a file outbox by default, Twilio on purpose, memory in tests."""
    check_sms_settings(settings, auth_token=auth_token)
    if settings.sms_backend == "twilio":
        return TwilioSmsBackend(
            account_sid=settings.twilio_account_sid,
            auth_token=auth_token or "",
            sender=settings.twilio_from,
            api_url=settings.twilio_api_url or None,
        )
    if settings.sms_backend == "memory":
        return MemorySmsBackend(sender=settings.twilio_from or "Synergie")
    return FileSmsBackend(
        directory=settings.outbox_dir / "sms", sender=settings.twilio_from or "Synergie"
    )
