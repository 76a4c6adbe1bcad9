"""The same hostile files give the same answer on SQLite and on PostgreSQL.

SQLite ignores ``VARCHAR(n)`` and stores NUL and any date; PostgreSQL refuses them. Before
the field checks a 300-character DOI loaded in the embedded mode and broke production.
PostgreSQL comes from ``PAPERBOY_TEST_POSTGRES_URL``, else from
``PAPERBOY_TEST_DATABASE_URL`` when that is a PostgreSQL URL; without either the test is
skipped, saying so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from recsys.catalog.papers import ingest_files
from recsys.db.models import Base, PaperRow
from recsys.db.session import Database
from tests.conftest import NOW

GOOD = {
    "id": "2401.00001",
    "title": "Rønnow’s “helium” films",
    "published": "2024-01-02T01:00+05:00",
}


def _jsonl(*records: dict[str, object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# Each file is ingested alone, so one refusal does not hide another.
HOSTILE: dict[str, bytes] = {
    "long_doi.jsonl": _jsonl(GOOD, {"id": "b", "title": "T", "doi": "10.1000/" + "d" * 300}),
    "long_id.jsonl": _jsonl({"id": "i" * 300, "title": "T"}),
    "nul.jsonl": _jsonl({"id": "a", "title": "Nul\u0000here"}),
    "surrogate.jsonl": b'{"id": "a", "title": "lone \\ud83d"}\n',
    "year_one.jsonl": _jsonl({"id": "a", "title": "T", "published": "0001-01-01T00:00+01:00"}),
    "digits.jsonl": b'{"id": "a", "title": "T", "n": ' + b"7" * 5000 + b"}\n",
    "deep.jsonl": b"[" * 50_000 + b"]" * 50_000 + b"\n",
    "quote.csv": b'id,title\n1,"Open quote\n2,Two\n',
    "nul.csv": b"id,title,doi\n1,T,10.1000/\x00x\n",
    "long_doi.csv": b"title,doi\nT,10.1000/" + b"e" * 300 + b"\n",
    "not_utf8.txt": b"A title\n\xff\xfe abstract\n",
    "atom_nul.xml": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
        b"<id>http://arxiv.org/abs/2401.00002v1</id><title>T&#1;</title></entry></feed>\n"
    ),
    "javascript_url.jsonl": _jsonl({**GOOD, "url": "javascript:alert(document.domain)//"}),
    "javascript_url.csv": b"id,title,url\n2401.00003,T,JAVASCRIPT:alert(1)\n",
}


def _postgres_url() -> str:
    url = os.environ.get("PAPERBOY_TEST_POSTGRES_URL") or os.environ.get(
        "PAPERBOY_TEST_DATABASE_URL", ""
    )
    if not url.startswith("postgresql"):
        pytest.skip("no PostgreSQL: set PAPERBOY_TEST_POSTGRES_URL to compare with SQLite")
    return url


def _fresh(url: str) -> Database:
    db = Database(url)
    try:
        Base.metadata.drop_all(db.engine)
    except OperationalError as exc:
        db.dispose()
        pytest.skip(f"PostgreSQL unreachable at {url}: {exc.orig}")
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate()
    return db


@pytest.fixture()
def backends(tmp_path: Path) -> Iterator[dict[str, Database]]:
    pg = _fresh(_postgres_url())
    lite = _fresh(f"sqlite:///{tmp_path / 'both.db'}")
    yield {"sqlite": lite, "postgresql": pg}
    pg.dispose()
    lite.dispose()


def _run(db: Database, path: Path) -> tuple[dict[str, object], list[tuple[object, ...]]]:
    with db.session() as s:
        s.execute(PaperRow.__table__.delete())
    with db.session() as s:
        report = ingest_files(s, [path], NOW).as_dict()
    with db.session() as s:
        rows = s.execute(
            select(
                PaperRow.title, PaperRow.url, PaperRow.doi, PaperRow.arxiv_id,
                PaperRow.external_id, PaperRow.published,
            ).order_by(PaperRow.title)
        )  # fmt: skip
        return report, [tuple(row) for row in rows]


def test_hostile_files_give_identical_results_on_sqlite_and_postgresql(
    backends: dict[str, Database], tmp_path: Path
) -> None:
    for name, content in HOSTILE.items():
        path = tmp_path / name
        path.write_bytes(content)
        lite, pg = (_run(backends[kind], path) for kind in ("sqlite", "postgresql"))
        assert lite == pg, name
        report, rows = lite
        if name.startswith("javascript_url"):
            assert not report["errors"] and len(report["warnings"]) == 1, name  # type: ignore[arg-type]
            assert rows and all(not str(row[1]).lower().startswith("javascript") for row in rows)
        else:
            assert len(report["errors"]) == 1 and rows == [], name  # type: ignore[arg-type]
            assert str(report["errors"][0]).startswith(f"{path}:"), name  # type: ignore[index]
