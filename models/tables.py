"""SQLModel tables: campaigns, companies, contacts, opt-outs and the stage history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.columns import UTCDateTime
from models.enums import Channel, MessageStatus, Source, Stage, enum_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Campaign(SQLModel, table=True):
    """A territory's programme for one year: its name and the communes it covers."""

    __table_args__ = (sa.UniqueConstraint("name", "year", name="uq_campaign_name_year"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    year: int
    communes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CompanyBase(SQLModel):
    """What the listing knows about a site."""

    siret: str | None = Field(default=None, max_length=14)
    name: str = Field(max_length=300)
    naf_code: str | None = Field(default=None, max_length=8)
    staff_band: str | None = Field(default=None, max_length=2)
    address: str | None = Field(default=None, max_length=500)
    postcode: str | None = Field(default=None, max_length=10)
    commune: str | None = Field(default=None, max_length=200)
    commune_code: str | None = Field(default=None, max_length=5, index=True)
    latitude: float | None = None
    longitude: float | None = None


class Company(CompanyBase, table=True):
    """A company site of the territory and the stage it has reached."""

    __table_args__ = (
        # SIRET is unique when present; a site without one is known by name + postcode.
        sa.Index("uq_company_siret", "siret", unique=True),
        sa.Index(
            "uq_company_name_postcode",
            "name_key",
            "postcode",
            unique=True,
            sqlite_where=sa.text("siret IS NULL"),
            postgresql_where=sa.text("siret IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name_key: str = Field(max_length=300)
    source: Source = Field(default=Source.LISTING, sa_type=enum_column(Source, "ck_company_source"))
    referred_by_id: int | None = Field(default=None, foreign_key="company.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    stage: Stage = Field(
        default=Stage.LISTED, sa_type=enum_column(Stage, "ck_company_stage"), index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    """A person, or a generic address, at a company."""

    __table_args__ = (
        # One contact per company and identity (e-mail, else phone, else name).
        sa.UniqueConstraint("company_id", "identity", name="uq_contact_company_identity"),
        sa.UniqueConstraint("public_id", name="uq_contact_public_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Links in messages name the contact by this random id, never by a guessable row id.
    public_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32)
    company_id: int = Field(foreign_key="company.id", index=True)
    identity: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    email_invalid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    phone: str | None = Field(default=None, max_length=20)
    phone_invalid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OptOut(SQLModel, table=True):
    """A contact's refusal of one channel: when, and how we learned it."""

    __tablename__ = "opt_out"
    __table_args__ = (
        sa.UniqueConstraint("contact_id", "channel", name="uq_opt_out_contact_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: Channel = Field(sa_type=enum_column(Channel, "ck_opt_out_channel"))
    at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=100)


class StageChange(SQLModel, table=True):
    """One move of a company from a stage to another: when, why and by whom."""

    __tablename__ = "stage_change"

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    from_stage: Stage = Field(sa_type=enum_column(Stage, "ck_stage_change_from"))
    to_stage: Stage = Field(sa_type=enum_column(Stage, "ck_stage_change_to"))
    at: datetime = Field(sa_type=UTCDateTime)
    why: str = Field(max_length=1000)
    actor: str = Field(max_length=200)


class Message(SQLModel, table=True):
    """The outbox: one row per message, written and claimed before the transport is called.

    ``key`` is the unique key of a send (campaign step + recipient + channel): a rerun or
    a second run at the same time can never produce a second row, and a row marked sent
    is never claimed again.
    """

    __table_args__ = (
        sa.UniqueConstraint("key", name="uq_message_key"),
        sa.UniqueConstraint("message_id", name="uq_message_message_id"),
        sa.Index("ix_message_claim", "status", "next_attempt_at"),
        sa.Index("ix_message_campaign_step", "campaign_id", "step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    step: str = Field(max_length=100)
    channel: Channel = Field(sa_type=enum_column(Channel, "ck_message_channel"))
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id")
    to_address: str = Field(max_length=320)
    message_id: str = Field(max_length=200)
    status: MessageStatus = Field(
        default=MessageStatus.QUEUED, sa_type=enum_column(MessageStatus, "ck_message_status")
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=1000)
    error_code: int | None = None
    provider_id: str | None = Field(default=None, max_length=200)
    context: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
