"""Choosing the e-mail and SMS backends from the settings, and refusing a half-configured one."""

from __future__ import annotations

from channels.base import EmailBackend
from channels.filebased import FileEmailBackend
from channels.locmem import MemoryEmailBackend
from channels.smtp import SmtpEmailBackend
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
