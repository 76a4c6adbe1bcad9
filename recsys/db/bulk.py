"""Many-row inserts that stay fast on PostgreSQL.

An ``executemany`` of 100,000 digest items costs one statement execution per row even when
pipelined; PostgreSQL's ``unnest`` takes one array per column instead, so the whole batch is
one statement with a handful of parameters, however many rows it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import FromClause, Table, text
from sqlalchemy.orm import Session


def insert_rows(
    session: Session, table: Table | FromClause, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one statement.

    On PostgreSQL: ``INSERT ... SELECT * FROM unnest(CAST(:col AS type[]), ...)``. Elsewhere
    (SQLite, the embedded mode): an ordinary ``executemany``. Values go to the driver as
    they are, without SQLAlchemy's per-column bind processing, so use it for columns of
    plain numbers, strings and booleans.
    """
    if not rows:
        return
    if not isinstance(table, Table):
        raise TypeError(f"insert_rows: expected a Table, got {type(table).__name__}")
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        session.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(bind.dialect)}[])" for name in names
    )
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
    )
    session.execute(statement, {name: [row[name] for row in rows] for name in names})
