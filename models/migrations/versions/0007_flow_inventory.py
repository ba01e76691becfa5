"""flow inventory: each site's material flows and the portal's questionnaire submissions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str, length: int = 32) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "material_flow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column(
            "origin", _enum("ck_material_flow_origin", "staff", "import", "portal"), nullable=False
        ),
        sa.Column(
            "direction", _enum("ck_material_flow_direction", "entrant", "sortant"), nullable=False
        ),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("waste_code", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=True),
        sa.Column("hazardous", sa.Boolean(), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column(
            "unit",
            _enum("ck_material_flow_unit", "t", "kg", "m³", "L", "pièces", "palettes"),
            nullable=False,
        ),
        sa.Column(
            "frequency",
            _enum("ck_material_flow_frequency", "semaine", "mois", "an"),
            nullable=False,
        ),
        sa.Column("monthly_quantity", sa.Float(), nullable=False),
        sa.Column(
            "outlet",
            _enum(
                "ck_material_flow_outlet",
                "collecteur",
                "enfouissement",
                "incinération",
                "recyclage",
                "réemploi",
                "fournisseur",
            ),
            nullable=False,
        ),
        sa.Column("trips_per_month", sa.Float(), nullable=True),
        sa.Column("km_per_trip", sa.Float(), nullable=True),
        sa.Column("amount_eur", sa.Float(), nullable=True),
        sa.Column(
            "money_kind", _enum("ck_material_flow_money_kind", "coût", "recette"), nullable=True
        ),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_material_flow_company_id"), "material_flow", ["company_id"], unique=False
    )
    op.create_table(
        "flow_submission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("submitted_at", models.columns.UTCDateTime(), nullable=False),
        sa.Column("reviewed_at", models.columns.UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_flow_submission_company_id"), "flow_submission", ["company_id"], unique=False
    )
    op.create_index("ix_flow_submission_pending", "flow_submission", ["reviewed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_flow_submission_pending", table_name="flow_submission")
    op.drop_index(op.f("ix_flow_submission_company_id"), table_name="flow_submission")
    op.drop_table("flow_submission")
    op.drop_index(op.f("ix_material_flow_company_id"), table_name="material_flow")
    op.drop_table("material_flow")
