"""Export the ranking log: logged digests as JSONL, plus a generic offline dataset.

The log itself is read by ``recsys.online.logged`` (the one reader, shared with the nightly
guard-rail); this module writes what it reads (schema in ``docs/experiments.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import EventRow, PaperRow
from recsys.online.logged import (
    CHUNK,
    SCHEMA_VERSION,
    LoggedDigest,
    aware,
    candidates_of,
    context_as_of,
    logged_arms,
    stream_logged_digests,
)
from recsys.subscribers.events import EVENT_WEIGHTS

__all__ = [
    "LoggedDigest",
    "candidates_of",
    "context_as_of",
    "export_logs",
    "logged_arms",
    "stream_logged_digests",
]


def export_logs(
    session: Session,
    out_dir: Path,
    *,
    now: datetime,
    window: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Write the logged digests and a generic offline dataset into ``out_dir``.

    ``digests.jsonl``: one logged digest a line (:meth:`LoggedDigest.as_record`).
    ``papers.jsonl``, ``train.csv``, ``test.csv``: the formats of ``experiments.generic``, so
    ``paperboy experiment run`` reads the folder as a dataset (``kind = "logs"``): training
    is every counted event before the first exported digest was ranked, the test the papers
    clicked in the exported digests. ``manifest.json`` holds the counts and bounds. Every
    file is written under a temporary name and renamed: never half-written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    papers: set[int] = set()
    counts = {"digests": 0, "shown": 0, "clicked": 0}
    first: list[datetime] = []

    def digests() -> Iterator[str]:
        stream = stream_logged_digests(session, now=now, window=window, since=since, until=until)
        for chunk in stream:
            for digest in chunk:
                papers.update(digest.pool.tolist())
                first[:] = [min([*first, digest.ranked_at])]
                counts["digests"] += 1
                counts["shown"] += len(digest.shown)
                counts["clicked"] += int(digest.clicked.sum())
                yield json.dumps(digest.as_record()) + "\n"

    _write_atomic(out_dir / "digests.jsonl", digests())
    _write_atomic(out_dir / "test.csv", _test_rows(out_dir / "digests.jsonl"))
    cutoff = first[0] if first else now
    _write_atomic(out_dir / "train.csv", _train_rows(session, cutoff, papers))
    _write_atomic(out_dir / "papers.jsonl", _paper_lines(session, sorted(papers)))
    manifest = {
        "schema": SCHEMA_VERSION,
        **counts,
        "papers": len(papers),
        "train_before": cutoff.isoformat(),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "window_days": window / timedelta(days=1),
        "exported_at": now.isoformat(),
    }
    _write_atomic(out_dir / "manifest.json", [json.dumps(manifest, indent=2) + "\n"])
    return manifest


def _test_rows(digests_file: Path) -> Iterator[str]:
    """The clicked papers of the exported digests (read back: nothing held in memory)."""
    yield "user_id,paper_id,timestamp\n"
    with digests_file.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for paper, clicked in zip(record["shown"], record["clicked"], strict=True):
                if clicked:
                    yield f"{record['user_id']},{paper},{record['sent_at']}\n"


def _train_rows(session: Session, before: datetime, papers: set[int]) -> Iterator[str]:
    """Counted events before ``before``, in chunks by id; their papers join ``papers``."""
    yield "user_id,paper_id,timestamp,kind\n"
    after = 0
    while True:
        rows = session.execute(
            select(EventRow.id, EventRow.user_id, EventRow.paper_id, EventRow.kind)
            .add_columns(EventRow.created_at)
            .where(EventRow.id > after, EventRow.created_at < before)
            .where(EventRow.kind.in_(list(EVENT_WEIGHTS)), EventRow.suspect.is_(False))
            .order_by(EventRow.id)
            .limit(CHUNK * 10)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for r in rows:
            papers.add(r.paper_id)
            yield f"{r.user_id},{r.paper_id},{aware(r.created_at).isoformat()},{r.kind}\n"


def _paper_lines(session: Session, paper_ids: list[int]) -> Iterator[str]:
    for start in range(0, len(paper_ids), CHUNK):
        rows = session.execute(
            select(
                PaperRow.id,
                PaperRow.title,
                PaperRow.abstract,
                PaperRow.authors,
                PaperRow.categories,
                PaperRow.published,
            )
            .where(PaperRow.id.in_(paper_ids[start : start + CHUNK]))
            .order_by(PaperRow.id)
        ).all()
        for r in rows:
            record = {
                "id": str(r.id),
                "title": r.title,
                "abstract": r.abstract or "",
                "authors": list(r.authors or []),
                "categories": list(r.categories or []),
                "published": aware(r.published).isoformat() if r.published else None,
            }
            yield json.dumps(record) + "\n"


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
    partial.replace(path)
