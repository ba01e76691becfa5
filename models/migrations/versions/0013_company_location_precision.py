"""company location precision: the site's own coordinates, or its commune's centroid

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (copy and move) of the company table would break the
    # foreign keys of every table that points at it. SQLite cannot add a CHECK to an
    # existing table without that copy, so only PostgreSQL gets the constraint here.
    op.add_column("company", sa.Column("location_precision", sa.String(length=32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            "ck_company_location_precision",
            "company",
            "location_precision IN ('site', 'commune')",
        )
    # Coordinates imported before this revision came from the listing file: the site's own.
    op.execute(
        "UPDATE company SET location_precision = 'site' "
        "WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("ck_company_location_precision", "company", type_="check")
    op.drop_column("company", "location_precision")
