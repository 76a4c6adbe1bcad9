"""the plan an online experiment was started with: control, alpha, horizon

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: experiments created before it have no stored plan and are reported with the
    # defaults (alpha 0.05, the first variant as control, no horizon), as before.
    op.add_column("experiments", sa.Column("plan", sa.JSON(), nullable=True))


def downgrade() -> None:
    # As 0009: SQLite >= 3.35 drops a plain column in place, and a downgrade that an older
    # revision refuses half-way has already dropped it (SQLite runs DDL outside the
    # transaction), so a second attempt must find nothing to do.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("experiments")}
    if "plan" not in present:
        return
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE experiments DROP COLUMN plan")
    else:
        op.drop_column("experiments", "plan")
