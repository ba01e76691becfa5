"""suppression list (backfilled from opt-outs and opted-out companies), phone numbers in E.164

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00.000000

Every opt-out recorded so far hung on a contact row (``opt_out``) or on a company's stage
(``opted_out``): both are copied to the address-keyed ``suppression`` table, so they keep
applying whatever row the same address or number comes back on. Phone numbers stored as
typed (callers, staff, contacts) are rewritten in E.164; a number that cannot be read is
left as it is (the SMS backend refuses it, and staff see it in the lists).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.columns
from synergie.listing.rows import RowRejected, clean_email, clean_phone

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANNELS = ("email", "sms", "phone", "all")
_SOURCES = ("portal", "one-click", "mailto", "sms-stop", "staff", "migration")
# What the opt_out table's free-text sources become.
_SOURCE_OF = {"portal": "portal", "one-click": "one-click", "carrier-stop": "sms-stop",
              "mailto": "mailto", "staff": "staff"}  # fmt: skip
_ACTOR = "migration:0004"


def _email(value: str | None) -> str | None:
    try:
        return clean_email(value or "")
    except RowRejected:
        return None


def _phone(value: str | None) -> str | None:
    try:
        return clean_phone(value or "")
    except RowRejected:
        return None


def upgrade() -> None:
    suppression = op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                *_CHANNELS,
                name="ck_suppression_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),  # fmt: skip
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                *_SOURCES,
                name="ck_suppression_source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),  # fmt: skip
        sa.Column("at", models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("lifted_why", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.create_index(
            "uq_suppression_active",
            ["address", "channel"],
            unique=True,
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )
    connection = op.get_bind()
    _phones_to_e164(connection)
    _backfill(connection, suppression)


def _phones_to_e164(connection: sa.Connection) -> None:
    """Rewrite every readable phone number of callers, staff and contacts in E.164."""
    for table in ("caller", "staff_member", "contact"):
        rows = connection.execute(
            sa.text(f"SELECT id, phone FROM {table} WHERE phone IS NOT NULL AND phone <> ''")  # noqa: S608
        ).all()
        for row_id, phone in rows:
            e164 = _phone(phone)
            if e164 is not None and e164 != phone:
                connection.execute(
                    sa.text(f"UPDATE {table} SET phone = :phone WHERE id = :id"),  # noqa: S608
                    {"phone": e164, "id": row_id},
                )


def _backfill(connection: sa.Connection, suppression: sa.Table) -> None:
    """One suppression per address and channel, from opt_out rows and opted-out companies."""
    now = datetime.now(UTC)
    wanted: dict[tuple[str, str], dict[str, object]] = {}

    def add(address: str | None, channel: str, **values: object) -> None:
        if address and (address, channel) not in wanted:
            wanted[(address, channel)] = {"address": address, "channel": channel,
                                          "actor": _ACTOR, **values}  # fmt: skip

    opt_outs = connection.execute(sa.text(
        "SELECT o.channel, o.at, o.source, c.id, c.email, c.phone "
        "FROM opt_out o JOIN contact c ON c.id = o.contact_id ORDER BY o.at, o.id"
    ).columns(at=models.columns.UTCDateTime())).all()  # fmt: skip
    for channel, at, source, contact_id, email, phone in opt_outs:
        address = _email(email) if channel == "email" else _phone(phone)
        add(
            address, channel, at=at or now, contact_id=contact_id,
            source=_SOURCE_OF.get(str(source), "migration"),
            reason=f"désinscription enregistrée avant la liste d'opposition (source : {source})",
        )  # fmt: skip
    opted_out = connection.execute(sa.text(
        "SELECT c.id, c.email, c.phone, co.name, co.updated_at FROM contact c "
        "JOIN company co ON co.id = c.company_id WHERE co.stage = 'opted_out' ORDER BY c.id"
    ).columns(updated_at=models.columns.UTCDateTime())).all()  # fmt: skip
    for contact_id, email, phone, company, at in opted_out:
        reason = f"l'entreprise {company} ne veut plus être contactée (étape « désinscrite »)"
        for address in (_email(email), _phone(phone)):
            add(address, "all", at=at or now, contact_id=contact_id, source="migration",
                reason=reason[:1000])  # fmt: skip
    if wanted:
        connection.execute(sa.insert(suppression), list(wanted.values()))


def downgrade() -> None:
    # Phone numbers stay in E.164: it is what every later version reads, and the typed form is lost.
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_suppression_active",
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )
    op.drop_table("suppression")
