"""Mailing campaigns: who is due a message, what it says, and sending a claimed batch through a backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from channels.base import EmailBackend, OutgoingEmail
from models.enums import Channel, Stage
from models.tables import Campaign, Company, Contact, Message
from synergie.messaging.links import unsubscribe_headers, unsubscribe_url
from synergie.messaging.optouts import refused
from synergie.messaging.outbox import ClaimedMessage, enqueue, message_key, new_message_id
from synergie.messaging.rendering import MailTemplates, RenderedEmail, programme_context
from synergie.messaging.sending import BatchOutcome, RateLimiter, SendPolicy, send_claimed
from synergie.settings import Settings


class CampaignNotFound(LookupError):
    """No campaign answers to the name given; the message lists the known ones."""


@dataclass(frozen=True)
class Recipient:
    """A contact due a message, with what the templates say about them."""

    contact_id: int
    public_id: str
    company_id: int
    email: str
    contact_name: str | None
    company_name: str
    commune: str | None
    source: str = "listing"  # how the company entered the listing: the RGPD notice says it


def find_campaign(*, session: Session, name: str | None) -> Campaign:
    """The campaign called ``name`` (latest year first), or the latest one when no name is given."""
    query = select(Campaign).order_by(col(Campaign.year).desc(), col(Campaign.id).desc())
    if name:
        query = query.where(Campaign.name == name)
    campaign = session.exec(query).first()
    if campaign is None:
        known = ", ".join(sorted({c.name for c in session.exec(select(Campaign))})) or "aucune"
        wanted = f"« {name} »" if name else "aucune campagne"
        raise CampaignNotFound(
            f"campagne inconnue : {wanted} (campagnes existantes : {known}) ; "
            "créez-la avec « synergie campaign add »"
        )
    return campaign


COMPANY, CONTACT = Company.__table__, Contact.__table__  # type: ignore[attr-defined]
MESSAGE = Message.__table__  # type: ignore[attr-defined]


def _recipients() -> sa.Select[Any]:
    """Contacts with what a Recipient holds, joined to their company."""
    return sa.select(
        CONTACT.c.id, CONTACT.c.public_id, COMPANY.c.id, CONTACT.c.email, CONTACT.c.name,
        COMPANY.c.name, COMPANY.c.commune, COMPANY.c.source,
    ).join(COMPANY, COMPANY.c.id == CONTACT.c.company_id)  # fmt: skip


def select_recipients(
    connection: sa.Connection, *, campaign: Campaign, step: str
) -> list[Recipient]:
    """Contacts due this step: company listed (in the campaign's communes), valid e-mail, not opted out or suppressed, not sent."""
    query = (
        _recipients()
        .where(
            COMPANY.c.stage == Stage.LISTED.value,
            CONTACT.c.email.is_not(None),
            CONTACT.c.email_invalid_at.is_(None),
            # Refused on this row, or the address is suppressed whatever row it came through.
            ~refused(
                contact_id=CONTACT.c.id,
                address=sa.func.lower(CONTACT.c.email),
                channel=Channel.EMAIL,
            ),
            ~sa.exists().where(
                MESSAGE.c.contact_id == CONTACT.c.id,
                MESSAGE.c.campaign_id == campaign.id,
                MESSAGE.c.step == step,
                MESSAGE.c.channel == Channel.EMAIL.value,
            ),
        )
        .order_by(COMPANY.c.name, CONTACT.c.id)
    )
    if campaign.communes:
        query = query.where(COMPANY.c.commune_code.in_(campaign.communes))
    return [Recipient(*row) for row in connection.execute(query)]


@dataclass(frozen=True)
class OutsideCommunes:
    """Companies of the listing (stage listed) that a campaign leaves out for their commune."""

    no_code: int = 0
    other_commune: int = 0


def companies_outside(connection: sa.Connection, *, campaign: Campaign) -> OutsideCommunes:
    """How many listed companies fall outside the campaign's communes: no commune code, or another commune."""
    if not campaign.communes:
        return OutsideCommunes()
    listed = COMPANY.c.stage == Stage.LISTED.value
    no_code = sa.select(sa.func.count()).where(listed, COMPANY.c.commune_code.is_(None))
    elsewhere = sa.select(sa.func.count()).where(
        listed, COMPANY.c.commune_code.not_in(campaign.communes)
    )
    return OutsideCommunes(
        connection.execute(no_code).scalar_one(), connection.execute(elsewhere).scalar_one()
    )


def sender_domain(settings: Settings) -> str:
    """The domain of the From address, used to build Message-IDs."""
    address = parseaddr(settings.mail_from)[1]
    return address.rpartition("@")[2] or "localhost"


def enqueue_recipients(
    connection: sa.Connection,
    recipients: Sequence[Recipient],
    *,
    campaign: Campaign,
    step: str,
    domain: str,
    now: datetime,
) -> int:
    """Write one queued outbox row per recipient (existing keys are kept); return how many are new."""
    rows = [
        {
            "key": message_key(
                campaign_id=campaign.id,
                step=step,
                recipient=f"contact:{r.contact_id}",
                channel=Channel.EMAIL,
            ),
            "campaign_id": campaign.id,
            "step": step,
            "channel": Channel.EMAIL.value,
            "contact_id": r.contact_id,
            "company_id": r.company_id,
            "to_address": r.email,
            "message_id": new_message_id(domain),
        }
        for r in recipients
    ]
    return enqueue(connection, rows, now=now)


def load_recipients(connection: sa.Connection, contact_ids: Sequence[int]) -> dict[int, Recipient]:
    """The recipients of a claimed batch, by contact id, in one query."""
    query = _recipients().where(CONTACT.c.id.in_(list(contact_ids)))
    return {row[0]: Recipient(*row) for row in connection.execute(query)}


class MailComposer:
    """Turns a recipient into a ready e-mail: rendered templates, unsubscribe headers and link."""

    def __init__(self, *, settings: Settings, templates: MailTemplates, template: str) -> None:
        self.settings = settings
        self.templates = templates
        self.template = template
        self.programme = programme_context(settings)

    def render(self, recipient: Recipient) -> RenderedEmail:
        """The subject, text and HTML of this step for ``recipient``."""
        return self.templates.render(
            self.template,
            {
                "company": {
                    "name": recipient.company_name,
                    "commune": recipient.commune or "",
                    "source": recipient.source,
                },
                "contact": {"name": recipient.contact_name or ""},
                "programme": self.programme,
                "unsubscribe_url": unsubscribe_url(
                    self.settings, recipient.public_id, Channel.EMAIL
                ),
            },
        )

    def preflight(self) -> OutgoingEmail:
        """The step's e-mail for a made-up recipient: a missing variable or template fails here.

        The transport check then composes it with the From and Reply-To settings.
        """
        recipient = Recipient(
            0, "0" * 32, 0, "exemple@example.org", "Prénom Nom", "Entreprise exemple", "Commune"
        )
        sample = ClaimedMessage(
            id=0, key="preflight", campaign_id=None, step=self.template, contact_id=0,
            company_id=0, to_address=recipient.email, attempts=0, context=None,
            message_id=new_message_id(sender_domain(self.settings)),
        )  # fmt: skip
        return self.compose(sample, recipient)

    def compose(self, message: ClaimedMessage, recipient: Recipient) -> OutgoingEmail:
        """The e-mail for one claimed outbox row."""
        rendered = self.render(recipient)
        return OutgoingEmail(
            key=message.key,
            to=message.to_address,
            to_name=recipient.contact_name or "",
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message.message_id,
            headers=unsubscribe_headers(self.settings, recipient.public_id, Channel.EMAIL),
        )


# Under a rate limit a batch lasts about this long at most: progress, reported between
# batches, keeps moving, and a throttled batch does not hold its connection for minutes.
THROTTLED_BATCH_SECONDS = 30


def batch_size_for(batch_size: int, rate_per_minute: int | None) -> int:
    """Messages per batch: ``batch_size``, or fewer when the rate would stretch it past ~30 s."""
    if rate_per_minute is None:
        return batch_size
    return max(1, min(batch_size, rate_per_minute * THROTTLED_BATCH_SECONDS // 60))


class BatchAllowance:
    """Decides how many rows each batch of a run may claim, so a run keeps ``concurrency``
    batches on the wire and never claims more than ``max_per_run`` rows in all."""

    def __init__(self, *, batch_size: int, concurrency: int, max_per_run: int) -> None:
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_per_run = max_per_run
        self.allotted = 0  # rows promised to batches sent or in flight
        self.claimed = 0
        self.drained = False  # a batch came back short: nothing more is due right now

    def to_start(self, in_flight: int) -> list[int]:
        """The limits of the batches to start now, given how many are still running."""
        limits: list[int] = []
        while not self.drained and in_flight + len(limits) < self.concurrency and self.room:
            limit = min(self.batch_size, self.max_per_run - self.allotted)
            self.allotted += limit
            limits.append(limit)
        return limits

    def finished(self, limit: int, claimed: int) -> None:
        """A batch allowed ``limit`` rows claimed ``claimed``: give back the rest."""
        self.allotted -= limit - claimed
        self.claimed += claimed
        self.drained = self.drained or claimed < limit

    @property
    def room(self) -> bool:
        return self.allotted < self.max_per_run

    def retry(self) -> None:
        """Rows became due again (a retry or an expired lease): start batches anew."""
        self.drained = False


def send_batch(
    *,
    engine: sa.Engine,
    backend: EmailBackend,
    composer: MailComposer,
    campaign_id: int | None,
    step: str,
    limit: int,
    policy: SendPolicy,
    now: Callable[[], datetime],
    throttle: RateLimiter | None = None,
) -> BatchOutcome:
    """Claim up to ``limit`` rows of a mailing step, send them over one connection, record each."""

    def build(connection: sa.Connection, claimed: list[ClaimedMessage]) -> Iterator[OutgoingEmail]:
        recipients = load_recipients(
            connection, [m.contact_id for m in claimed if m.contact_id is not None]
        )
        # Rendered one by one as the backend reads them: no database access from here on.
        return (composer.compose(message, recipients[message.contact_id]) for message in claimed)  # type: ignore[index]

    return send_claimed(
        engine=engine, backend=backend, channel=Channel.EMAIL, campaign_id=campaign_id, step=step,
        limit=limit, policy=policy, now=now, build=build, throttle=throttle,
    )  # fmt: skip


def preview(*, composer: MailComposer, recipients: Sequence[Recipient]) -> list[dict[str, Any]]:
    """What would go out, rendered for real but written nowhere: one line per recipient."""
    lines = []
    for recipient in recipients:
        rendered = composer.render(recipient)
        lines.append(
            {
                "entreprise": recipient.company_name,
                "contact": recipient.contact_name or "",
                "courriel": recipient.email,
                "objet": rendered.subject,
            }
        )
    return lines
