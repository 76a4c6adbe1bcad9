"""a lease on each digest row: until when the task working on it holds it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recsys.db.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain nullable ADD COLUMN: SQLite adds it in place. Rows from before it have no
    # lease, so the sweep handles them by PAPERBOY_SWEEP_STALE_AFTER_S, as it did.
    op.add_column(
        "digests",
        sa.Column("lease_until", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # Not batch mode: on SQLite that copies ``digests``, which digest_items, attempts and
    # events reference. SQLite >= 3.35 drops a plain column in place; drop it only if there.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("digests")}
    if "lease_until" not in present:
        return
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE digests DROP COLUMN lease_until")
    else:
        op.drop_column("digests", "lease_until")
