"""online experiments: ranking log, candidate pools, propensities

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import recsys.db.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Named, so the downgrade can drop them on SQLite too (batch mode needs the name).
FK_EXPERIMENT = "fk_digests_experiment_id_experiments"
FK_POOL = "fk_digests_candidate_pool_id_candidate_pools"


def upgrade() -> None:
    op.create_table(
        "candidate_pools",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("paper_ids", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", recsys.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", recsys.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", recsys.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # Items ranked before this revision came from the deterministic top-k: propensity 1.
    # Plain-string defaults: a SQL-expression default would make SQLite copy the whole table.
    with op.batch_alter_table("digest_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("propensity", sa.Float(), server_default="1.0", nullable=False)
        )
        batch_op.add_column(sa.Column("explored", sa.Boolean(), server_default="0", nullable=False))

    _add_digest_references()
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variant", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ranker_config", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("candidate_mask", sa.LargeBinary(), nullable=True))
        batch_op.create_index("ix_digests_candidate_pool_id", ["candidate_pool_id"], unique=False)
        batch_op.create_index("ix_digests_experiment_id", ["experiment_id"], unique=False)


def _add_digest_references() -> None:
    """``digests.experiment_id`` and ``candidate_pool_id`` with their foreign keys.

    SQLite can only add a constraint by copying the table, and dropping the old ``digests``
    with foreign keys on cascades to ``digest_items`` and ``delivery_attempts``: every item
    would be lost. SQLite does allow a new NULL column with an inline REFERENCES, so use it.
    """
    if op.get_bind().dialect.name == "sqlite":
        for column, table in (
            ("experiment_id", "experiments"),
            ("candidate_pool_id", "candidate_pools"),
        ):
            op.execute(
                f"ALTER TABLE digests ADD COLUMN {column} INTEGER "
                f"REFERENCES {table} (id) ON DELETE SET NULL"
            )
        return
    op.add_column("digests", sa.Column("experiment_id", BIG_ID, nullable=True))
    op.add_column("digests", sa.Column("candidate_pool_id", BIG_ID, nullable=True))
    op.create_foreign_key(
        FK_POOL, "digests", "candidate_pools", ["candidate_pool_id"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        FK_EXPERIMENT, "digests", "experiments", ["experiment_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite and op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Dropping a referenced column makes SQLite copy digests; see _add_digest_references.
        raise RuntimeError(
            "downgrading 0003 on SQLite with foreign keys on would delete every digest item; "
            "run it over a plain connection: alembic -x url=sqlite:///PATH downgrade 0002"
        )
    with op.batch_alter_table("digests", schema=None) as batch_op:
        if not sqlite:  # SQLite's inline references are unnamed and go with the copy
            batch_op.drop_constraint(FK_EXPERIMENT, type_="foreignkey")
            batch_op.drop_constraint(FK_POOL, type_="foreignkey")
        batch_op.drop_index("ix_digests_experiment_id")
        batch_op.drop_index("ix_digests_candidate_pool_id")
        batch_op.drop_column("candidate_mask")
        batch_op.drop_column("candidate_pool_id")
        batch_op.drop_column("ranker_config")
        batch_op.drop_column("variant")
        batch_op.drop_column("experiment_id")

    with op.batch_alter_table("digest_items", schema=None) as batch_op:
        batch_op.drop_column("explored")
        batch_op.drop_column("propensity")

    op.drop_table("experiments")
    op.drop_table("candidate_pools")
