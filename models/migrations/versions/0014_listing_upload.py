"""listing uploads: a listing staff uploaded on the portal, and what its import did

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 14:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("stored_path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="ck_listing_upload_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("filtered_out", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("not_diffusible", sa.Integer(), nullable=False),
        sa.Column("unplaced", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.Column("unplaced_rows", sa.JSON(), nullable=False),
        sa.Column("rejects_path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("uploaded_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_member.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stored_path", name="uq_listing_upload_stored_path"),
    )
    with op.batch_alter_table("listing_upload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_listing_upload_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("listing_upload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listing_upload_staff_id"))
    op.drop_table("listing_upload")
