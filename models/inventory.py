"""Tables of the flow inventory: each site's incoming and outgoing material flows, and the portal's submissions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.columns import UTCDateTime
from models.enums import enum_column
from models.tables import utcnow


class Direction(StrEnum):
    """Whether a material comes into the site or leaves it."""

    INCOMING = "entrant"
    OUTGOING = "sortant"


DIRECTION_LABELS_FR: dict[Direction, str] = {
    Direction.OUTGOING: "Sortant (quitte le site)",
    Direction.INCOMING: "Entrant (arrive sur le site)",
}


class Unit(StrEnum):
    """How a quantity is counted."""

    TONNE = "t"
    KILOGRAM = "kg"
    CUBIC_METRE = "m³"
    LITRE = "L"
    PIECE = "pièces"
    PALLET = "palettes"


class Frequency(StrEnum):
    """The period a quantity is given for."""

    WEEK = "semaine"
    MONTH = "mois"
    YEAR = "an"


FREQUENCY_LABELS_FR: dict[Frequency, str] = {
    Frequency.WEEK: "par semaine",
    Frequency.MONTH: "par mois",
    Frequency.YEAR: "par an",
}


class Outlet(StrEnum):
    """How a flow leaves (or arrives at) the site today."""

    COLLECTOR = "collecteur"
    LANDFILL = "enfouissement"
    INCINERATION = "incinération"
    RECYCLING = "recyclage"
    REUSE = "réemploi"
    SUPPLIER = "fournisseur"


class MoneyKind(StrEnum):
    """Whether the amount of a flow is what it costs the company or what it brings in."""

    COST = "coût"
    VALUE = "recette"


MONEY_KIND_LABELS_FR: dict[MoneyKind, str] = {
    MoneyKind.COST: "Coût (vous payez)",
    MoneyKind.VALUE: "Recette (on vous paie)",
}


class FlowOrigin(StrEnum):
    """Who wrote a flow row: staff by hand, a CSV import, or the company in the portal."""

    STAFF = "staff"
    IMPORT = "import"
    PORTAL = "portal"


FLOW_ORIGIN_LABELS_FR: dict[FlowOrigin, str] = {
    FlowOrigin.STAFF: "saisi par l'équipe",
    FlowOrigin.IMPORT: "importé d'un fichier",
    FlowOrigin.PORTAL: "déclaré sur le portail",
}


class MaterialFlow(SQLModel, table=True):
    """One material flow of a site: what, which way, how much, how often, where it goes, by truck."""

    __tablename__ = "material_flow"

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    origin: FlowOrigin = Field(sa_type=enum_column(FlowOrigin, "ck_material_flow_origin"))
    direction: Direction = Field(sa_type=enum_column(Direction, "ck_material_flow_direction"))
    description: str = Field(max_length=300)
    category: str = Field(max_length=40)
    # Six digits of the European List of Waste, without spaces or star; None when not a waste.
    waste_code: str | None = Field(default=None, max_length=6)
    hazardous: bool = False
    quantity: float
    unit: Unit = Field(sa_type=enum_column(Unit, "ck_material_flow_unit"))
    frequency: Frequency = Field(sa_type=enum_column(Frequency, "ck_material_flow_frequency"))
    # The quantity brought to a month (52/12 weeks, 1/12 year), in ``unit``: what matching reads.
    monthly_quantity: float
    outlet: Outlet = Field(sa_type=enum_column(Outlet, "ck_material_flow_outlet"))
    trips_per_month: float | None = None
    km_per_trip: float | None = None
    amount_eur: float | None = None  # per ``frequency``, like the quantity
    money_kind: MoneyKind | None = Field(
        default=None, sa_type=enum_column(MoneyKind, "ck_material_flow_money_kind")
    )
    note: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)


class FlowSubmission(SQLModel, table=True):
    """One questionnaire sent back through the portal: the officer is told once, and the review logged once."""

    __tablename__ = "flow_submission"
    __table_args__ = (sa.Index("ix_flow_submission_pending", "reviewed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    company_id: int = Field(foreign_key="company.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    rows: int
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    # Set, with the officer's e-mail queued and the review hours booked, in one transaction.
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_by: str | None = Field(default=None, max_length=200)
