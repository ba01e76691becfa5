"""quarterly meetings, registrations, referrals

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:59:03.485040
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("starts_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("host_company_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("per_company", sa.Integer(), nullable=False),
        sa.Column("agenda", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "invited",
                "held",
                "cancelled",
                name="ck_meeting_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["host_company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid", name="uq_meeting_uid"),
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("referrer_company_id", sa.Integer(), nullable=False),
        sa.Column("referrer_contact_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("invited_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referrer_company_id"],
            ["company.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referrer_contact_id"],
            ["contact.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "company_id", name="uq_referral_meeting_company"),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_meeting_id"), ["meeting_id"], unique=False)

    op.create_table(
        "registration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "registered",
                "waiting",
                "declined",
                "maybe",
                "no-answer",
                name="ck_registration_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("waiting_since", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("promoted_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("confirmed_version", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("invited_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "company_id", name="uq_registration_meeting_company"),
    )
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_company_id"), ["company_id"], unique=False
        )
        batch_op.create_index(
            "ix_registration_meeting_status", ["meeting_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("registration", schema=None) as batch_op:
        batch_op.drop_index("ix_registration_meeting_status")
        batch_op.drop_index(batch_op.f("ix_registration_company_id"))

    op.drop_table("registration")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_meeting_id"))

    op.drop_table("referral")
    op.drop_table("meeting")
