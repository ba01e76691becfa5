"""SQLModel tables: campaigns, companies, contacts, opt-outs and the stage history."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.enums import Channel, Source, Stage, enum_column
from models.types import UTCDateTime


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
    )

    id: int | None = Field(default=None, primary_key=True)
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
