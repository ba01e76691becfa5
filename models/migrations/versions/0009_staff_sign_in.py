"""staff sign-in: one-time links used, and the sessions they opened

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 11:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_sign_in",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("used_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nonce", name="uq_staff_sign_in_nonce"),
    )
    with op.batch_alter_table("staff_sign_in", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sign_in_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_sign_in", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sign_in_staff_id"))
    op.drop_table("staff_sign_in")
