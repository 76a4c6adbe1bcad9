"""Pooled and event-loop connections: dead ones are found without a ping on every use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, Select, create_engine, literal_column, select, text

from recsys.db import session as session_module
from recsys.db.session import Database, LoopWrites

BACKEND_PID: Select[tuple[Any]] = select(literal_column("pg_backend_pid()"))


def _postgres(db: Database) -> LoopWrites:
    if db.loop_writes is None:
        pytest.skip("PostgreSQL only: SQLite has no server to drop a connection")
    return db.loop_writes


def _kill(db: Database, pid: int) -> None:
    """Terminate the server end of connection ``pid``, as a restart or an idle timeout would."""
    other = create_engine(db.url)  # not db's pool, which would hand back ``pid`` itself
    with other.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def _pid(conn: Connection) -> int:
    return int(conn.execute(BACKEND_PID).scalar_one())


def test_a_pooled_connection_that_died_while_idle_is_replaced_unseen(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres(db)
    db.engine.dispose()
    with db.engine.connect() as conn:
        dead = _pid(conn)
        conn.commit()  # returned to the pool idle, so its return does not touch the server
    _kill(db, dead)
    monkeypatch.setattr(session_module, "PING_AFTER_IDLE_S", 0.0)

    with db.engine.connect() as conn:
        assert _pid(conn) != dead


def test_on_the_loop_a_dead_connection_fails_one_statement_then_all_are_checked(
    db: Database,
) -> None:
    writes = _postgres(db)

    async def run() -> tuple[int, int | None]:
        try:
            [pid] = await writes.first(BACKEND_PID, {}) or [0]
            _kill(db, pid)
            with pytest.raises(Exception):  # noqa: B017 - whatever psycopg says; not retried
                await writes.first(BACKEND_PID, {})
            row = await writes.first(BACKEND_PID, {})
            return pid, row[0] if row else None
        finally:
            await writes.close()

    dead, now_used = asyncio.run(run())

    assert now_used is not None and now_used != dead
