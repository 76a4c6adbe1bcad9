"""Migrations: the newest revision matches the models, keeps data, and goes down and up again.

Runs in a scratch schema (PostgreSQL) or a scratch file (SQLite), never the shared test
database, which other tests keep at the newest revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text

from recsys.db.models import Base
from recsys.db.session import MIGRATIONS_DIR, Database

SCHEMA = "migration_check"


@pytest.fixture()
def scratch(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """An empty database of the same backend as the suite's."""
    if not database_url.startswith("postgresql"):
        db = Database(f"sqlite:///{tmp_path / 'scratch.db'}")
        yield db
        db.dispose()
        return
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
    sep = "&" if "?" in database_url else "?"
    db = Database(f"{database_url}{sep}options=-csearch_path%3D{SCHEMA}")
    yield db
    db.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def _alembic(db: Database, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def _downgrade_to_0002(db: Database) -> None:
    """SQLite needs foreign keys off to downgrade (the revision refuses otherwise)."""
    if db.engine.dialect.name != "sqlite":
        _alembic(db, "downgrade", "0002")
        return
    with pytest.raises(RuntimeError, match="would delete every digest item"):
        _alembic(db, "downgrade", "0002")
    plain = Database.__new__(Database)
    plain.engine = create_engine(db.url)  # no PRAGMA foreign_keys=ON listener
    _alembic(plain, "downgrade", "0002")
    plain.engine.dispose()


def test_the_newest_revision_matches_the_models(scratch: Database) -> None:
    scratch.migrate()
    with scratch.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        if scratch.engine.dialect.name == "sqlite":
            diff = _without_inline_reference_noise(conn, diff)
    assert diff == []


def _without_inline_reference_noise(conn: Connection, diff: list[Any]) -> list[Any]:
    """SQLAlchemy does not read ON DELETE of SQLite's inline REFERENCES (0003 adds two), so
    it reports them as removed and re-added: check them with the pragma and drop the noise."""
    actions = {(row[3], row[6]) for row in conn.exec_driver_sql("PRAGMA foreign_key_list(digests)")}
    assert {("experiment_id", "SET NULL"), ("candidate_pool_id", "SET NULL")} <= actions
    inline = {"experiment_id", "candidate_pool_id"}
    return [
        d for d in diff
        if not (d[0] in {"add_fk", "remove_fk"} and set(d[1].column_keys) <= inline)
    ]  # fmt: skip


def test_0003_keeps_digest_items_and_downgrades_cleanly(scratch: Database) -> None:
    _alembic(scratch, "upgrade", "0002")
    with scratch.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, email, status, timezone, send_hour, frequency, digest_size,"
            " created_at) VALUES (1, 'a@x.org', 'active', 'UTC', 7, 'daily', 10, '2026-11-21')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO papers (id, title_key, title, abstract, authors, categories, url,"
            " source, created_at, updated_at) VALUES (1, 't', 'T', '', '[]', '[]', 'u', '',"
            " '2026-11-21', '2026-11-21')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO digests (id, user_id, period, status, attempts, created_at, updated_at)"
            " VALUES (1, 1, 'p', 'sent', 0, '2026-11-21', '2026-11-21')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO digest_items (digest_id, paper_id, position, score, reason)"
            " VALUES (1, 1, 0, 0.5, '')"
        ))  # fmt: skip

    _alembic(scratch, "upgrade", "head")
    with scratch.engine.connect() as conn:
        item = conn.execute(text("SELECT propensity, explored FROM digest_items")).one()
        digest = conn.execute(text("SELECT experiment_id, variant FROM digests")).one()
    assert (item.propensity, bool(item.explored)) == (1.0, False)  # the old top-k was certain
    assert tuple(digest) == (None, None)

    _downgrade_to_0002(scratch)
    _alembic(scratch, "upgrade", "head")
    with scratch.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM digest_items")).scalar() == 1
