"""company location precision: the site's own coordinates, or its commune's centroid

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-30 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "location_precision",
                sa.Enum(
                    "site",
                    "commune",
                    name="ck_company_location_precision",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                nullable=True,
            )
        )
        # Coordinates imported before this revision came from the listing file: the site's own.
    op.execute(
        "UPDATE company SET location_precision = 'site' "
        "WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_column("location_precision")
