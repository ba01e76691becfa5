"""callers, call tasks, staff, visits, time ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 02:23:06.455490
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "caller",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("calls_per_day", sa.Integer(), nullable=False),
        sa.Column("days_available", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "staff_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("weekly_hours", sa.JSON(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "time_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "activity",
            sa.Enum(
                "listing",
                "call",
                "visit",
                "flows-collection",
                "meeting",
                name="ck_time_entry_activity",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("time_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_time_entry_company_id"), ["company_id"], unique=False)

    op.create_table(
        "call_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("assigned_on", sa.Date(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "reached",
                "interested",
                "no-answer",
                "callback",
                "refused",
                "wrong-number",
                name="ck_call_task_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("callback_on", sa.Date(), nullable=True),
        sa.Column("notes", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("logged_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("logged_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["caller.id"],
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
    )
    with op.batch_alter_table("call_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_task_caller_id"), ["caller_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_task_company_id"), ["company_id"], unique=False)
        batch_op.create_index(
            "uq_call_task_open_company",
            ["company_id"],
            unique=True,
            sqlite_where=sa.text("outcome IS NULL"),
            postgresql_where=sa.text("outcome IS NULL"),
        )

    op.create_table(
        "visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reserved_start", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reserved_end", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "booked",
                "cancelled",
                "done",
                name="ck_visit_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "partstat",
            sa.Enum(
                "needs-action",
                "accepted",
                "declined",
                "tentative",
                name="ck_visit_partstat",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("notes", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
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
            ["staff_id"],
            ["staff_member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid", name="uq_visit_uid"),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visit_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_staff_id"))
        batch_op.drop_index(batch_op.f("ix_visit_company_id"))

    op.drop_table("visit")
    with op.batch_alter_table("call_task", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_call_task_open_company",
            sqlite_where=sa.text("outcome IS NULL"),
            postgresql_where=sa.text("outcome IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_call_task_company_id"))
        batch_op.drop_index(batch_op.f("ix_call_task_caller_id"))

    op.drop_table("call_task")
    with op.batch_alter_table("time_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_time_entry_company_id"))

    op.drop_table("time_entry")
    op.drop_table("staff_member")
    op.drop_table("caller")
