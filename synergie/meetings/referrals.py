"""Referrals: a participant brings a company of their network; it enters the listing once, linked to who brought it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.enums import Answer, Source
from models.tables import Company, Contact, Meeting, Referral, Registration
from synergie.listing.rows import (
    POSTCODE_PATTERN,
    RowRejected,
    clean_email,
    clean_phone,
    clean_siret,
    name_key,
)
from synergie.meetings.planning import open_registrations
from synergie.meetings.registrations import AnswerRefused

__all__ = [
    "ReferralForm",
    "ReferralOutcome",
    "ReferralRefused",
    "create_referral",
    "validate_referral",
]

logger = logging.getLogger(__name__)


class ReferralRefused(ValueError):
    """A referral form with a problem; ``errors`` maps each field to its French message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ReferralForm:
    """The referral form, validated: the company and its contact, cleaned as the listing import does."""

    company_name: str
    siret: str | None
    postcode: str
    commune: str
    contact_name: str
    email: str
    phone: str | None
    consent: bool


@dataclass(frozen=True, slots=True)
class ReferralOutcome:
    """What a referral did: the row, whether the company was new to the listing, whether it was referred before."""

    referral: Referral
    company: Company
    contact: Contact
    new_company: bool
    already_referred: bool


def validate_referral(fields: dict[str, str]) -> ReferralForm:
    """Return the cleaned form, or raise ReferralRefused naming every field to correct."""
    errors: dict[str, str] = {}

    def text(name: str, limit: int) -> str:
        return " ".join((fields.get(name) or "").split())[:limit]

    company_name = text("company_name", 300)
    if not company_name:
        errors["company_name"] = "Indiquez le nom de l'entreprise."
    siret = None
    try:
        siret = clean_siret(fields.get("siret") or "")
    except RowRejected as exc:
        errors["siret"] = f"{str(exc)[0].upper()}{str(exc)[1:]}."
    postcode = text("postcode", 10).replace(" ", "")
    if len(postcode) == 4 and postcode.isdigit():
        postcode = "0" + postcode
    if not POSTCODE_PATTERN.match(postcode):
        errors["postcode"] = "Indiquez un code postal à 5 chiffres, par exemple 21700."
    commune = text("commune", 200)
    if not commune:
        errors["commune"] = "Indiquez la commune."
    contact_name = text("contact_name", 200)
    if not contact_name:
        errors["contact_name"] = "Indiquez le nom de la personne à inviter."
    email = None
    try:
        email = clean_email(fields.get("email") or "")
    except RowRejected:
        errors["email"] = (
            "Cette adresse e-mail n'est pas valide (exemple : prenom.nom@entreprise.fr)."
        )
    if email is None and "email" not in errors:
        errors["email"] = "Indiquez l'adresse e-mail de la personne : l'invitation lui est envoyée."
    phone = None
    try:
        phone = clean_phone(fields.get("phone") or "")
    except RowRejected:
        errors["phone"] = "Ce numéro de téléphone n'est pas valide (exemple : 06 12 34 56 78)."
    consent = (fields.get("consent") or "") in ("1", "on", "oui", "true")
    if not consent:
        errors["consent"] = "Cochez la case : nous n'écrivons qu'à une personne qui l'accepte."
    if errors:
        raise ReferralRefused(errors)
    return ReferralForm(
        company_name, siret, postcode, commune, contact_name, email or "", phone, consent
    )


def _known_company(session: Session, form: ReferralForm) -> Company | None:
    if form.siret:
        found = session.exec(select(Company).where(Company.siret == form.siret)).first()
        if found is not None:
            return found
    return session.exec(
        select(Company)
        .where(Company.name_key == name_key(form.company_name), Company.postcode == form.postcode)
        .order_by(col(Company.id))
    ).first()


def create_referral(
    *, session: Session, meeting: Meeting, referrer: Contact, form: ReferralForm, now: datetime
) -> ReferralOutcome:
    """Record that ``referrer`` brings the company of ``form`` to ``meeting``; a known company is linked, not duplicated.

    Only a company registered for the meeting may bring another one. The caller holds
    ``lock_meeting`` (two participants bringing the same company at once make one row).
    """
    if now >= meeting.starts_at:
        raise AnswerRefused(
            "La rencontre a commencé : il n'est plus possible d'y inviter une entreprise."
        )
    registration = session.exec(
        select(Registration).where(
            Registration.meeting_id == meeting.id, Registration.company_id == referrer.company_id
        )
    ).first()
    if registration is None or registration.status != Answer.REGISTERED or registration.removed:
        raise AnswerRefused(
            "Seules les entreprises inscrites à la rencontre peuvent y inviter une entreprise."
        )
    company = _known_company(session, form)
    if company is not None and company.id == referrer.company_id:
        raise ReferralRefused({"company_name": "Invitez une autre entreprise que la vôtre."})
    new_company = company is None
    if company is None:
        company = Company(
            siret=form.siret, name=form.company_name, name_key=name_key(form.company_name),
            postcode=form.postcode, commune=form.commune, source=Source.REFERRAL,
            referred_by_id=referrer.company_id, campaign_id=meeting.campaign_id,
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(company)
        session.flush()
    identity = f"email:{form.email}"
    contact = session.exec(
        select(Contact).where(Contact.company_id == company.id, Contact.identity == identity)
    ).first()
    if contact is None:
        contact = Contact(
            company_id=company.id,  # type: ignore[arg-type]
            identity=identity, name=form.contact_name, email=form.email, phone=form.phone,
            created_at=now,
        )  # fmt: skip
        session.add(contact)
        session.flush()
    existing = session.exec(
        select(Referral).where(Referral.meeting_id == meeting.id, Referral.company_id == company.id)
    ).first()
    if existing is not None:
        return ReferralOutcome(existing, company, contact, new_company, True)
    referral = Referral(
        meeting_id=meeting.id,  # type: ignore[arg-type]
        referrer_company_id=referrer.company_id, referrer_contact_id=referrer.id,  # type: ignore[arg-type]
        company_id=company.id, contact_id=contact.id,  # type: ignore[arg-type]
        consent=form.consent, created_at=now,
    )  # fmt: skip
    session.add(referral)
    open_registrations(session=session, meeting=meeting, companies=[company], now=now)
    session.flush()
    logger.info(
        "meeting %s: company %s referred by company %s", meeting.id, company.id, referrer.company_id
    )
    return ReferralOutcome(referral, company, contact, new_company, False)
