"""model versions, their chunked files and the active version, shared by every host

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recsys.db.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions trained before this migration live only in their host's folder: they are
    # not published here, so the first training after the upgrade is the first shared model
    # (docs/deploy.md says so).
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("created_at", recsys.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
    )
    op.create_table(
        "model_chunks",
        sa.Column(
            "version",
            sa.String(64),
            sa.ForeignKey("model_versions.version", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("path", sa.String(255), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "active_model",
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column(
            "version",
            sa.String(64),
            sa.ForeignKey("model_versions.version", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("activated_at", recsys.db.models.UtcDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("active_model")
    op.drop_table("model_chunks")
    op.drop_table("model_versions")
