"""interleaving experiments: experiments.kind and the team of each digest item

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs with constant defaults: SQLite adds them in place (no table copy,
    # which would cascade-delete the items of every digest). Experiments from before this
    # revision were A/B splits, and their items belong to no team.
    op.add_column(
        "experiments",
        sa.Column("kind", sa.String(length=16), server_default="split", nullable=False),
    )
    op.add_column("digest_items", sa.Column("team", sa.String(length=1), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a plain column in place (batch mode would copy the tables). SQLite
    # runs DDL outside the transaction, so a downgrade refused further down (0003 refuses
    # with foreign keys on) has already dropped these: drop each only if still there.
    inspector = sa.inspect(op.get_bind())
    for table, column in (("digest_items", "team"), ("experiments", "kind")):
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            continue
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
