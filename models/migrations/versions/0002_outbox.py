"""outbox messages, contact public ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:23:02.679067
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "phone",
                name="ck_message_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                "bounced",
                "cancelled",
                name="ck_message_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_message_key"),
        sa.UniqueConstraint("message_id", name="uq_message_message_id"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_campaign_step", ["campaign_id", "step"], unique=False)
        batch_op.create_index("ix_message_claim", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_contact_id"), ["contact_id"], unique=False)

    # Existing contacts get a random public id before the column becomes required.
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    contact = sa.table("contact", sa.column("id", sa.Integer), sa.column("public_id", sa.String))
    connection = op.get_bind()
    for (contact_id,) in connection.execute(sa.select(contact.c.id)).all():
        connection.execute(
            contact.update().where(contact.c.id == contact_id).values(public_id=uuid.uuid4().hex)
        )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.alter_column(
            "public_id", existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        )
        batch_op.create_unique_constraint("uq_contact_public_id", ["public_id"])


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_constraint("uq_contact_public_id", type_="unique")
        batch_op.drop_column("public_id")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_contact_id"))
        batch_op.drop_index("ix_message_claim")
        batch_op.drop_index("ix_message_campaign_step")

    op.drop_table("message")
