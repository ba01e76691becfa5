"""The ``mailbox`` flow: read what came back by mail (bounces, unsubscribe mails, calendar answers) and act on it."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from synergie.settings import load_settings
from tasks.mailbox import publish_mailbox_summary, read_mailbox


class MailboxParams(BaseModel):
    """Combien de courriels lire. Par défaut, un essai à blanc qui dit ce qui serait fait."""

    limit: int = Field(
        title="Courriels au plus",
        default=500,
        ge=1,
        le=10_000,
        description="Nombre maximal de courriels lus par passage",
    )
    dry_run: bool = Field(
        title="Essai à blanc",
        default=True,
        description="Essai à blanc : dire ce qui serait fait, sans rien enregistrer ni ranger",
    )


@flow(name="mailbox")
def mailbox(params: MailboxParams = MailboxParams()) -> dict[str, int]:  # noqa: B008 (the form's default)
    """Handle each mail waiting in the IMAP folder once, then publish how many of each kind."""
    settings = load_settings()
    report = read_mailbox(settings=settings, limit=params.limit, dry_run=params.dry_run)
    publish_mailbox_summary(report)
    return report.as_dict()


if __name__ == "__main__":
    mailbox()
