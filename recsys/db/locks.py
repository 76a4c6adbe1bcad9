"""Exclusive locks across processes and hosts, held by the database: one training at a time.

PostgreSQL: a session-level advisory lock, so every worker on every host that shares the
database agrees. SQLite (the embedded, single-machine mode): an ``flock`` on a file beside
the database file, which every process on the machine agrees on. Both are released when
the holder exits, however it exits, so a killed training never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from recsys.db.bulk import is_postgresql


@contextmanager
def try_exclusive(session: Session, name: str) -> Iterator[bool]:
    """Hold the lock ``name`` for the block if nobody else does; yield whether we got it.

    Never waits: a second training that finds the first one running has nothing to add.
    """
    if is_postgresql(session):
        with _advisory(session, name) as held:
            yield held
    else:
        with _file_lock(session, name) as held:
            yield held


def _key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (advisory locks are keyed by bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _advisory(session: Session, name: str) -> Iterator[bool]:
    # A session-level lock lives on one connection: take it on a connection of its own
    # rather than the session's, which may be returned to the pool between statements.
    engine = session.get_bind()
    with engine.connect() as conn:  # type: ignore[union-attr]
        held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}))
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
            conn.commit()


@contextmanager
def _file_lock(session: Session, name: str) -> Iterator[bool]:
    database = session.get_bind().url.database  # type: ignore[union-attr]
    if not database or database == ":memory:":
        yield True  # an in-memory database lives in one process: nobody to exclude
        return
    path = Path(f"{database}.{name}.lock")
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
