"""The one owner of database connections: engine, sessions, migrations, and the few
connections a web worker writes tracked clicks on from its event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Compiled, Connection, Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import ClauseElement

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so the worker and CLI can share it."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url)
    _ping_when_idle(engine)
    return engine


# A pooled connection used moments ago is alive; one that sat idle may have been closed by
# the server, a proxy or a restart, and would fail the request that draws it. SQLAlchemy's
# pool_pre_ping pings on every checkout instead: a round trip added to every tracked click.
# A connection that dies while busy (a restart under load) fails that one request (no
# redirect, nothing half-written) and SQLAlchemy then discards every older connection.
PING_AFTER_IDLE_S = 2.0
_LAST_USED = "paperboy_last_used"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)  # None: connected just now
        if last_used is None or time.monotonic() - last_used < PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_conn, None):
                raise exc.InvalidatePoolError() from error  # the pool retries with a new one
            raise

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """An engine plus a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; set once here, as per-connection execution_options cost a click 10%.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.loop_writes = LoopWrites(self.engine) if _is_psycopg(self.engine) else None

    def autocommit(self) -> Connection:
        """A connection on which each statement commits as it runs: for one-statement writes."""
        return self._autocommit.connect()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _is_psycopg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


class LoopWrites:
    """A process's few PostgreSQL connections for one-statement writes on its event loop.

    For a hot path (a tracked click), each statement committing as it runs. A thread-pool
    hop around a pooled connection cost a click twice the CPU of the statement itself. Here
    the statement runs as a coroutine, with the bind values passed as they are (aware
    datetimes, not SQLAlchemy's type processing). Connections are opened on first use, on
    the loop that uses them; one idle for :data:`PING_AFTER_IDLE_S` is pinged first and
    replaced if dead, and after any failure every connection is pinged before its next use
    (a restart kills them all). A statement that fails is not retried: it may have committed.
    """

    # Eight: one for each click a worker has in flight under the benchmark's load (16
    # connections over 2 workers), so that none waits for a connection.
    def __init__(self, engine: Engine, size: int = 8) -> None:
        self._dialect = engine.dialect
        self._connect_args = engine.dialect.create_connect_args(engine.url)
        self._size = size
        self._opened = 0
        self._idle: asyncio.Queue[tuple[Any, float]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compiled: dict[int, Compiled] = {}
        self._doubted_at = 0.0  # connections idle since before this are pinged before use

    async def first(
        self, statement: ClauseElement, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row ``statement`` returns with ``params``, or None when it returns none."""
        compiled = self._compile(statement)
        values = compiled.construct_params(dict(params))
        conn = await self._checkout()
        try:
            cursor = await conn.execute(compiled.string, values, prepare=True)
            row: tuple[Any, ...] | None = await cursor.fetchone()
        except BaseException:
            self._doubted_at = time.monotonic()
            await self._discard(conn)
            raise
        self._checkin(conn)
        return row

    async def close(self) -> None:
        """Close the idle connections (at shutdown, on the loop that used them)."""
        while self._idle is not None and not self._idle.empty():
            conn, _ = self._idle.get_nowait()
            await conn.close()

    def _compile(self, statement: ClauseElement) -> Compiled:
        # Keyed by identity: the hot path's statements are module constants, built once.
        compiled = self._compiled.get(id(statement))
        if compiled is None:
            compiled = self._compiled[id(statement)] = statement.compile(dialect=self._dialect)
        return compiled

    async def _checkout(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # connections belong to one loop (tests run several)
            self._loop, self._idle, self._opened = loop, asyncio.Queue(), 0
        assert self._idle is not None
        if self._idle.empty() and self._opened < self._size:
            return await self._open()
        conn, last_used = await self._idle.get()
        fresh = time.monotonic() - last_used < PING_AFTER_IDLE_S
        if fresh and last_used > self._doubted_at and not conn.closed:
            return conn
        try:
            await conn.execute("SELECT 1")
        except Exception:
            await self._discard(conn)  # dead while idle: nothing was sent, so open a new one
            return await self._open()
        except BaseException:
            await self._discard(conn)
            raise
        return conn

    async def _open(self) -> Any:
        import psycopg  # only PostgreSQL deployments have it

        args, kwargs = self._connect_args
        self._opened += 1
        try:
            return await psycopg.AsyncConnection.connect(*args, **kwargs, autocommit=True)
        except BaseException:
            self._opened -= 1
            raise

    def _checkin(self, conn: Any) -> None:
        assert self._idle is not None
        self._idle.put_nowait((conn, time.monotonic()))

    async def _discard(self, conn: Any) -> None:
        self._opened -= 1
        await conn.close()
