"""mailbox journal: each incoming mail handled once (its effect and this row in one transaction)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:58:45.790174
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("folder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "bounced",
                "delayed",
                "unsubscribed",
                "replied",
                "auto-reply",
                "to-review",
                name="ck_mailbox_mail_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("handled_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("moved_to", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("moved_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest", name="uq_mailbox_mail_digest"),
    )
    with op.batch_alter_table("mailbox_mail", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mailbox_mail_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mailbox_mail_message_id"))

    op.drop_table("mailbox_mail")
