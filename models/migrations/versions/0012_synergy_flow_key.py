"""synergy_flow.flow_id names a row of material_flow (foreign key, deleted with the flow)

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "fk_synergy_flow_flow_id_material_flow"


def upgrade() -> None:
    # Links to flows that no longer exist (ids typed before the inventory was there) go.
    op.execute(
        sa.text("DELETE FROM synergy_flow WHERE flow_id NOT IN (SELECT id FROM material_flow)")
    )
    with op.batch_alter_table("synergy_flow", schema=None) as batch_op:
        batch_op.create_foreign_key(KEY, "material_flow", ["flow_id"], ["id"], ondelete="CASCADE")
        batch_op.create_index(batch_op.f("ix_synergy_flow_flow_id"), ["flow_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("synergy_flow", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_synergy_flow_flow_id"))
        batch_op.drop_constraint(KEY, type_="foreignkey")
