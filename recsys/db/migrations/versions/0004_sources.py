"""harvesting: per-source state (watermark, lease, last run) and the fields sources add

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recsys.db.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAPER_COLUMNS = ("updated", "journal_ref", "comments", "pdf_url")


def upgrade() -> None:
    op.create_table(
        "harvest_sources",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("watermark", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    # Plain nullable ADD COLUMNs: SQLite adds them in place, without copying ``papers``.
    op.add_column(
        "papers",
        sa.Column("updated", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
    )
    op.add_column("papers", sa.Column("journal_ref", sa.Text(), nullable=True))
    op.add_column("papers", sa.Column("comments", sa.Text(), nullable=True))
    op.add_column("papers", sa.Column("pdf_url", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite that copies ``papers``, and dropping the old table with
    # foreign keys on would cascade to every event and digest item. SQLite >= 3.35 drops a
    # plain column in place. pysqlite runs DDL outside the transaction, so a downgrade that
    # a later revision stopped may have dropped some already: drop only what is there.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("papers")}
    for column in reversed(PAPER_COLUMNS):
        if column not in present:
            continue
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE papers DROP COLUMN {column}")
        else:
            op.drop_column("papers", column)
    op.execute("DROP TABLE IF EXISTS harvest_sources")
