"""Many-row inserts and updates that stay fast on PostgreSQL.

An ``executemany`` of 100,000 digest items costs one statement execution per row even when
pipelined; PostgreSQL's ``unnest`` takes one array per column instead, so the whole batch is
one statement with a handful of parameters, however many rows it holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def is_postgresql(session: Session) -> bool:
    """Whether ``session`` talks to PostgreSQL (else SQLite, the embedded mode)."""
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``, as one array parameter (``= ANY(:array)``) on PostgreSQL.

    A 1,000-value ``IN`` is 1,000 placeholders: SQLAlchemy names each one and psycopg
    re-parses the long statement on every call (too long for its cache); one array
    parameter keeps the statement short and cached. SQLite keeps the plain ``IN``.
    """
    if not is_postgresql(session):
        return column.in_(list(values))
    item = BigInteger() if isinstance(column.type, Integer) else String()
    return column == any_(bindparam(None, list(values), type_=ARRAY(item)))


def analyze_if_unseen(session: Session, table: Table, inserted: int) -> bool:
    """``ANALYZE table`` on PostgreSQL when the planner has not seen most of its rows.

    Until a table is first analyzed the planner guesses, and for ``key = ANY(:1000 keys)``
    on a fresh ``papers`` table of 25,000-50,000 rows it guessed nearly the whole table
    and scanned it: a first large harvest slowed from 0.2 s to 2-4 s a page until
    autovacuum caught up (measured). So after inserting ``inserted`` rows, if the
    planner's row count (``pg_class.reltuples``: -1 never analyzed) is smaller, the table
    is analyzed now; this happens once or twice in a table's life, as later batches are
    small beside the table. ANALYZE samples at most 30,000 rows, including this
    transaction's own. True when it ran; SQLite (no cost-based guessing here) never does.
    """
    if inserted <= 0 or not is_postgresql(session):
        return False
    seen = session.scalar(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"),
        {"name": table.name},
    )
    if seen is not None and seen >= inserted:
        return False
    session.execute(text(f"ANALYZE {table.name}"))
    return True


def insert_rows(
    session: Session, table: Table | FromClause, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one statement.

    On PostgreSQL: ``INSERT ... SELECT * FROM unnest(CAST(:col AS type[]), ...)``. Elsewhere
    (SQLite, the embedded mode): an ordinary ``executemany``. Values go to the driver as
    they are, without SQLAlchemy's per-column bind processing (JSON values are serialised
    here), so datetimes must be aware. Columns left out get their scalar defaults, as the
    ``executemany`` would give them; a callable default must be given in the rows.
    """
    if not rows:
        return
    if not isinstance(table, Table):
        raise TypeError(f"insert_rows: expected a Table, got {type(table).__name__}")
    if not is_postgresql(session):
        session.execute(table.insert(), list(rows))
        return
    bind = session.get_bind()
    values = {name: [_plain(table, name, row[name]) for row in rows] for name in rows[0]}
    for name, default in _scalar_defaults(table, list(values)).items():
        values[name] = [default] * len(rows)
    names = list(values)
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table, name, bind)})" for name in names)
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
    )
    session.execute(statement, values)


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert ``rows`` into ``table`` (its primary key ``id`` left out); their ids, in order.

    On PostgreSQL the ids are drawn from the column's sequence first and the rows go in
    with ``COPY`` (:func:`copy_rows`): a multi-row ``INSERT ... VALUES ... RETURNING`` of
    1,000 papers has 17,000 placeholders, too long for psycopg's statement cache, and
    re-parsing it was 24 s of a 54 s harvest of 50,000 papers (profiled); ``unnest`` arrays
    took 76 ms per 1,000 papers, ``COPY`` 30 ms (measured). SQLite: see
    :func:`_sqlite_insert_returning_ids`.
    """
    if not rows:
        return []
    if not is_postgresql(session):
        return _sqlite_insert_returning_ids(session, table, rows)
    ids = list(
        session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": len(rows)},
        )
    )
    copy_rows(session, table, [{"id": id_, **row} for id_, row in zip(ids, rows, strict=True)])
    return ids


def _sqlite_insert_returning_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """One ``executemany``; the ids are the ``len(rows)`` up to ``last_insert_rowid()``.

    SQLAlchemy cannot order a multi-row SQLite ``RETURNING`` by the rows given, so it sent
    one ``INSERT`` per row (a quarter of a SQLite harvest, profiled). SQLite gives a new
    row the largest rowid plus one and lets no other writer in until this transaction
    ends, so the rows of one ``executemany`` get consecutive ids; that is checked, and a
    gap (a table at the largest rowid, which picks them at random) is an error.
    """
    session.execute(table.insert(), list(rows))
    last = int(session.scalar(text("SELECT last_insert_rowid()")) or 0)
    ids = list(range(last - len(rows) + 1, last + 1))
    between = table.c.id.between(ids[0], ids[-1])
    found = session.scalar(select(func.count()).select_from(table).where(between))
    if found != len(rows):
        raise RuntimeError(f"{table.name}: the new rows did not get consecutive ids")
    return ids


def copy_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``COPY`` ``rows`` (dicts with the same keys) into ``table``: PostgreSQL through psycopg.

    In the session's transaction. As in :func:`insert_rows`, values go as they are (JSON
    serialised here, datetimes aware) and columns left out get their scalar defaults. A
    broken constraint raises SQLAlchemy's ``IntegrityError``, as a statement would: the
    harvest retries a page on it (two sources storing one paper at the same moment).
    """
    if not rows:
        return
    names = list(rows[0])
    defaults = _scalar_defaults(table, names)
    columns = [*names, *defaults]
    is_json = [isinstance(table.c[name].type, JSON) for name in names]
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a live connection of the session's transaction
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [
                    json.dumps(row[name]) if json_ and row[name] is not None else row[name]
                    for name, json_ in zip(names, is_json, strict=True)
                ]
                copy.write_row([*values, *defaults.values()])
    except session.get_bind().dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc


def _scalar_defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """The scalar Python-side defaults of ``table``'s columns not in ``given``."""
    return {
        column.name: getattr(column.default, "arg", None)
        for column in table.c
        if column.name not in given and column.default is not None and column.default.is_scalar
    }


def update_rows(session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """Update rows of the mapped class ``model`` by primary key ``id``.

    Each dict holds ``id`` and the new values. On PostgreSQL: one
    ``UPDATE ... FROM unnest(...)``, JSON values serialised here (the arrays travel as
    ``json[]``). Elsewhere: SQLAlchemy's ORM bulk UPDATE by primary key.
    """
    if not rows:
        return
    if not is_postgresql(session):
        session.execute(update(model), list(rows))
        return
    bind = session.get_bind()
    table: Table = model.__table__
    names = ["id", *(name for name in rows[0] if name != "id")]
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table, name, bind)})" for name in names)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    statement = text(
        f"UPDATE {table.name} SET {assignments} "
        f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE {table.name}.id = v.id"
    )
    session.execute(
        statement, {name: [_plain(table, name, r[name]) for r in rows] for name in names}
    )


def _array_type(table: Table, name: str, bind: Any) -> str:
    column_type = table.c[name].type
    return "json[]" if isinstance(column_type, JSON) else f"{column_type.compile(bind.dialect)}[]"


def _plain(table: Table, name: str, value: Any) -> Any:
    is_json = isinstance(table.c[name].type, JSON)
    return json.dumps(value) if is_json and value is not None else value
