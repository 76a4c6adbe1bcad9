"""an index on events.digest_id: click attribution joins each digest's items to its clicks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The off-policy report reads the clicks of 1,000 digests at a time by digest id; without
    # an index PostgreSQL hashes the whole events table for every chunk.
    op.create_index("ix_events_digest", "events", ["digest_id"])


def downgrade() -> None:
    # As 0009: SQLite runs DDL outside the transaction, so a downgrade that an older revision
    # refuses half-way has already dropped the index; a second attempt must not fail on it.
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("events")}
    if "ix_events_digest" in present:
        op.drop_index("ix_events_digest", table_name="events")
