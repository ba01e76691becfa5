"""companies, contacts, opt-outs, stage history, campaigns

Revision ID: 0001
Revises:
Create Date: 2026-11-29 01:09:59.089327
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("communes", sa.JSON(), nullable=False),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "year", name="uq_campaign_name_year"),
    )
    op.create_table(
        "company",
        sa.Column("siret", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("naf_code", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("staff_band", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("postcode", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("commune", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("commune_code", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name_key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "listing",
                "sirene",
                "referral",
                "manual",
                name="ck_company_source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("referred_by_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column(
            "stage",
            sa.Enum(
                "listed",
                "contacted",
                "called",
                "visit_scheduled",
                "visited",
                "flows_collected",
                "participant",
                "member",
                "declined",
                "unreachable",
                "opted_out",
                "closed",
                name="ck_company_stage",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["referred_by_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_commune_code"), ["commune_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_stage"), ["stage"], unique=False)
        batch_op.create_index(
            "uq_company_name_postcode",
            ["name_key", "postcode"],
            unique=True,
            sqlite_where=sa.text("siret IS NULL"),
            postgresql_where=sa.text("siret IS NULL"),
        )
        batch_op.create_index("uq_company_siret", ["siret"], unique=True)

    op.create_table(
        "contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("identity", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("email_invalid_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("phone_invalid_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "identity", name="uq_contact_company_identity"),
    )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_company_id"), ["company_id"], unique=False)

    op.create_table(
        "stage_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_stage",
            sa.Enum(
                "listed",
                "contacted",
                "called",
                "visit_scheduled",
                "visited",
                "flows_collected",
                "participant",
                "member",
                "declined",
                "unreachable",
                "opted_out",
                "closed",
                name="ck_stage_change_from",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "to_stage",
            sa.Enum(
                "listed",
                "contacted",
                "called",
                "visit_scheduled",
                "visited",
                "flows_collected",
                "participant",
                "member",
                "declined",
                "unreachable",
                "opted_out",
                "closed",
                name="ck_stage_change_to",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("why", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stage_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stage_change_company_id"), ["company_id"], unique=False
        )

    op.create_table(
        "opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "phone",
                name="ck_opt_out_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id", "channel", name="uq_opt_out_contact_channel"),
    )
    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opt_out_contact_id"), ["contact_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("opt_out", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opt_out_contact_id"))

    op.drop_table("opt_out")
    with op.batch_alter_table("stage_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stage_change_company_id"))

    op.drop_table("stage_change")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_company_id"))

    op.drop_table("contact")
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index("uq_company_siret")
        batch_op.drop_index(
            "uq_company_name_postcode",
            sqlite_where=sa.text("siret IS NULL"),
            postgresql_where=sa.text("siret IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_company_stage"))
        batch_op.drop_index(batch_op.f("ix_company_commune_code"))

    op.drop_table("company")
    op.drop_table("campaign")
