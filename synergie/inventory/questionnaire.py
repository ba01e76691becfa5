"""The questionnaire's messages: the signed link sent after a visit, and the officer's summary of each answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.enums import Activity, Channel
from models.inventory import FlowOrigin, FlowSubmission
from models.tables import Company, Contact, TimeEntry
from synergie.inventory.codes import categories, format_waste_code
from synergie.inventory.store import company_flows
from synergie.mailing.campaigns import sender_domain
from synergie.messaging.links import (
    TokenClaims,
    _portal_base,
    read_token,
    sign_token,
    unsubscribe_url,
)
from synergie.messaging.optouts import opted_out_contact_ids
from synergie.messaging.rendering import MailTemplates, programme_context
from synergie.messaging.sending import enqueue_prepared, prepared_email
from synergie.settings import Settings

__all__ = [
    "INVENTORY",
    "QUESTIONNAIRE_TEMPLATE",
    "REVIEW_TEMPLATE",
    "Reviewed",
    "invite_to_inventory",
    "inventory_url",
    "read_inventory_token",
    "review_submissions",
]

logger = logging.getLogger(__name__)

# The token purpose of questionnaire links: refused by every other page, and vice versa.
INVENTORY = "inventory"
QUESTIONNAIRE_TEMPLATE = "questionnaire-flux"
REVIEW_TEMPLATE = "inventaire-recu"


def inventory_url(settings: Settings, contact_public_id: str, *, now: datetime) -> str:
    """Return the questionnaire link of a contact: ``{public_url}/inventaire/{token}``, valid ``inventory_link_days``."""
    token = sign_token(
        key=settings.link_signing_key, purpose=INVENTORY, subject=contact_public_id,
        expires_at=now + timedelta(days=settings.inventory_link_days),
    )  # fmt: skip
    return f"{_portal_base(settings)}/inventaire/{token}"


def read_inventory_token(token: str, *, settings: Settings, now: datetime) -> TokenClaims:
    """Return the claims of a questionnaire token, or raise InvalidToken (French message)."""
    key, *previous = settings.link_verification_keys
    return read_token(token, key=key, purpose=INVENTORY, now=now, previous_keys=previous)


def invite_to_inventory(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    company: Company,
    contact_id: int | None,
    now: datetime,
) -> bool:
    """Queue the questionnaire link for the visited company's contact; True if a message was queued.

    Nothing is queued for a contact without a usable e-mail, or who refused e-mail (own row or
    suppression list); the outbox key (one per company and contact) makes a second close a no-op.
    """
    contact = session.get(Contact, contact_id) if contact_id else None
    if contact is None:
        contact = session.exec(
            select(Contact)
            .where(Contact.company_id == company.id, col(Contact.email).is_not(None),
                   col(Contact.email_invalid_at).is_(None))
            .order_by(col(Contact.id))
        ).first()  # fmt: skip
    if contact is None or not contact.email or contact.email_invalid_at is not None:
        logger.info("company %s: no contact e-mail, questionnaire not sent", company.id)
        return False
    if opted_out_contact_ids(session=session, contact_ids=[contact.id], channel=Channel.EMAIL):  # type: ignore[list-item]
        logger.info(
            "company %s: contact %s refuses e-mail, questionnaire not sent", company.id, contact.id
        )
        return False
    rendered = templates.render(
        QUESTIONNAIRE_TEMPLATE,
        {
            "company": company,
            "contact": contact,
            "programme": programme_context(settings),
            "questionnaire_url": inventory_url(settings, contact.public_id, now=now),
            "link_days": settings.inventory_link_days,
            "unsubscribe_url": unsubscribe_url(settings, contact.public_id, Channel.EMAIL),
        },
    )
    return enqueue_prepared(
        session.connection(),
        step=f"inventaire-{company.id}",
        recipient=f"contact:{contact.id}",
        channel=Channel.EMAIL,
        to_address=contact.email,
        content=prepared_email(
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            to_name=contact.name or "",
        ),  # fmt: skip
        domain=sender_domain(settings),
        now=now,
        contact_id=contact.id,
        company_id=company.id,
    )


@dataclass(frozen=True, slots=True)
class Reviewed:
    """One submission the officer was told about, and the review time booked for it."""

    submission_id: int
    company: str
    rows: int
    hours: float
    queued: bool


def _claim(session: Session, submission: FlowSubmission, now: datetime, actor: str) -> bool:
    # Conditional on reviewed_at still being empty: of two runs (the trigger and the schedule),
    # only one gets the row; the other's update waits for it, then changes nothing.
    result = session.execute(
        sa.update(FlowSubmission)
        .where(col(FlowSubmission.id) == submission.id, col(FlowSubmission.reviewed_at).is_(None))
        .values(reviewed_at=now, reviewed_by=actor)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def review_submissions(
    *,
    session: Session,
    settings: Settings,
    templates: MailTemplates,
    now: datetime,
    actor: str,
    company_id: int | None = None,
) -> list[Reviewed]:
    """Tell the officer about each submission not yet reviewed (one company's, or all) and book the review time.

    Each submission is claimed, its summary queued (outbox key per submission) and its hours
    booked in the caller's transaction: committed together, so a rerun never does it twice.
    """
    query = select(FlowSubmission).where(col(FlowSubmission.reviewed_at).is_(None))
    if company_id is not None:
        query = query.where(FlowSubmission.company_id == company_id)
    pending: Sequence[FlowSubmission] = session.exec(query.order_by(col(FlowSubmission.id))).all()
    done = []
    labels = categories()
    for submission in pending:
        if not _claim(session, submission, now, actor):
            continue
        company = session.get(Company, submission.company_id)
        if company is None:
            continue
        flows = company_flows(session=session, company_id=company.id, origin=FlowOrigin.PORTAL)  # type: ignore[arg-type]
        lines = [
            {
                "direction": flow.direction.value,
                "description": flow.description,
                "category": labels[flow.category].label if flow.category in labels else flow.category,
                "code": format_waste_code(flow.waste_code, flow.hazardous) if flow.waste_code else "",
                "quantity": f"{flow.quantity:g} {flow.unit.value} par {flow.frequency.value}",
                "monthly": f"{flow.monthly_quantity:.3g} {flow.unit.value}/mois",
                "outlet": flow.outlet.value,
                "trucks": (f"{flow.trips_per_month:g} trajet(s)/mois"
                           + (f" de {flow.km_per_trip:g} km" if flow.km_per_trip else ""))
                if flow.trips_per_month else "",
            }
            for flow in flows
        ]  # fmt: skip
        rendered = templates.render(
            REVIEW_TEMPLATE,
            {
                "company": company,
                "programme": programme_context(settings),
                "flows": lines,
                "hours": settings.inventory_review_hours,
            },
        )
        queued = enqueue_prepared(
            session.connection(),
            step=f"inventaire-recu-{submission.id}",
            recipient=f"officer:{settings.officer_email}",
            channel=Channel.EMAIL,
            to_address=settings.officer_email,
            content=prepared_email(
                subject=rendered.subject, text=rendered.text, html=rendered.html
            ),
            domain=sender_domain(settings),
            now=now,
            company_id=company.id,
        )
        session.add(
            TimeEntry(
                activity=Activity.FLOWS_COLLECTION,
                hours=settings.inventory_review_hours,
                company_id=company.id,
                day=now.astimezone(settings.tz).date(),
                actor=actor,
                created_at=now,
            )
        )
        session.flush()
        done.append(Reviewed(submission.id, company.name, submission.rows,  # type: ignore[arg-type]
                             settings.inventory_review_hours, queued))  # fmt: skip
    return done
