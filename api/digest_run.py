"""Run one round of digests through the worker and watch the database until it is done."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from recsys.db.models import DigestRow, UserRow
from recsys.db.session import Database
from recsys.digests import FINAL_STATUSES
from recsys.settings import Settings
from workers.embedded import Embedded

Progress = Callable[[str, int, int], None]


class RunTimeout(RuntimeError):
    """The digests did not all reach a final state in time."""


def due_users(db: Database, now: datetime) -> int:
    with db.session() as session:
        query = select(func.count()).where(
            UserRow.status == "active", UserRow.next_digest_at <= now
        )
        return int(session.scalar(query.select_from(UserRow)) or 0)


def counts_since(db: Database, since: datetime) -> Counter[str]:
    with db.session() as session:
        rows = session.execute(
            select(DigestRow.status, func.count())
            .where(DigestRow.created_at >= since)
            .group_by(DigestRow.status)
        ).all()
    return Counter({status: int(n) for status, n in rows})


def wait_until_final(
    db: Database,
    since: datetime,
    total: int,
    alive: Callable[[], bool],
    timeout_s: float,
    progress: Progress,
) -> Counter[str]:
    """Poll the database (never the broker) until no user is due and every digest is final."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = counts_since(db, since)
        final = sum(n for status, n in counts.items() if status in FINAL_STATUSES)
        progress("digests", final, max(total, final))
        pending = sum(counts.values()) - final
        if pending == 0 and due_users(db, since) == 0:
            return counts
        if not alive():
            raise RunTimeout("the worker stopped; see DATA_DIR/logs/worker.log")
        if time.monotonic() > deadline:
            raise RunTimeout(f"timed out after {timeout_s:.0f}s with digests {dict(counts)}")
        time.sleep(0.25)


def run_digests(settings: Settings, *, timeout_s: float, progress: Progress) -> dict[str, int]:
    """Plan every due digest now and wait until each is sent, skipped or failed."""
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    since = datetime.now(UTC)
    total = due_users(db, since)
    with Embedded(settings) as runtime:
        assert runtime.celery is not None
        runtime.celery.send_task("paperboy.plan")
        counts = wait_until_final(db, since, total, runtime.alive, timeout_s, progress)
    db.dispose()
    return dict(counts)
