"""synergies: parties, linked flows, status history (idea → study → agreed → running → stopped)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("idea", "study", "agreed", "running", "stopped")


def _status(name: str) -> sa.Enum:
    return sa.Enum(*STATUSES, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "synergy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "substitution",
                "pooling",
                name="ck_synergy_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),  # fmt: skip
        sa.Column("status", _status("ck_synergy_status"), nullable=False),
        sa.Column("trips_per_month", sa.Float(), nullable=False),
        sa.Column("km_per_trip", sa.Float(), nullable=False),
        sa.Column("tonnes_per_year", sa.Float(), nullable=False),
        sa.Column("vehicle", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("notes", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("synergy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_synergy_status"), ["status"], unique=False)

    op.create_table(
        "synergy_party",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synergy_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("is_authority", sa.Boolean(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.CheckConstraint(
            "(company_id IS NULL) = is_authority", name="ck_synergy_party_company_or_authority"
        ),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["synergy_id"], ["synergy.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("synergy_id", "company_id", name="uq_synergy_party_company"),
    )
    with op.batch_alter_table("synergy_party", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_synergy_party_company_id"), ["company_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_synergy_party_synergy_id"), ["synergy_id"], unique=False
        )

    op.create_table(
        "synergy_flow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synergy_id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["synergy_id"], ["synergy.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("synergy_id", "flow_id", name="uq_synergy_flow"),
    )
    with op.batch_alter_table("synergy_flow", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_synergy_flow_synergy_id"), ["synergy_id"], unique=False
        )

    op.create_table(
        "synergy_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synergy_id", sa.Integer(), nullable=False),
        sa.Column("from_status", _status("ck_synergy_status_change_from"), nullable=True),
        sa.Column("to_status", _status("ck_synergy_status_change_to"), nullable=False),
        sa.Column("at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("why", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["synergy_id"], ["synergy.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("synergy_status_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_synergy_status_change_synergy_id"), ["synergy_id"], unique=False
        )


def downgrade() -> None:
    for table in ("synergy_status_change", "synergy_flow", "synergy_party"):
        op.drop_table(table)
    with op.batch_alter_table("synergy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_synergy_status"))
    op.drop_table("synergy")
