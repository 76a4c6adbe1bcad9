"""each subscriber's strictness: how close a paper must be to be sent (issue 14)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NOT NULL with a server default: SQLite adds it in place and existing subscribers get
    # the normal bar, exactly what they had before they could choose.
    op.add_column(
        "users",
        sa.Column("strictness", sa.String(16), nullable=False, server_default="normal"),
    )


def downgrade() -> None:
    # As 0006: SQLite >= 3.35 drops a plain column in place (batch mode would copy users,
    # which every other table references).
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "strictness" not in present:
        return
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE users DROP COLUMN strictness")
    else:
        op.drop_column("users", "strictness")
