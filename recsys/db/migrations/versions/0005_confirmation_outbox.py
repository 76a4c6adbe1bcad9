"""the confirmation e-mail as an outbox row: when it was sent, how often it was tried

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recsys.db.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain nullable (or defaulted) ADD COLUMNs: SQLite adds them in place.
    op.add_column(
        "users",
        sa.Column(
            "confirmation_sent_at", recsys.db.models.UtcDateTime(timezone=True), nullable=True
        ),
    )
    op.add_column(
        "users",
        sa.Column("confirmation_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    # Accounts from before this column were mailed (or not) by the old task: the sweep must
    # not mail them all at once on upgrade.
    op.execute("UPDATE users SET confirmation_sent_at = created_at")


def downgrade() -> None:
    # Not batch mode: on SQLite that copies ``users``, and dropping the old table with foreign
    # keys on would cascade to every digest and event. SQLite >= 3.35 drops a plain column in
    # place. pysqlite runs DDL outside the transaction, so a downgrade that an older revision
    # stopped may have dropped some already: drop only what is there (as 0004 does).
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    for column in ("confirmation_attempts", "confirmation_sent_at"):
        if column not in present:
            continue
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE users DROP COLUMN {column}")
        else:
            op.drop_column("users", column)
