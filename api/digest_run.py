"""Run one round of digests through the worker and watch the database until it is done."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from recsys.db.models import DigestRow
from recsys.db.session import Database
from recsys.digests.outbox import FINAL_STATUSES, count_due
from recsys.progress import Progress
from recsys.settings import Settings
from workers.embedded import Embedded

STALL_S = 180.0  # training a large corpus is the slowest step before the first digest moves
LOG_HINT = "DATA_DIR/logs/worker.log"


class RunTimeout(RuntimeError):
    """The digests did not all reach a final state in time."""


def due_users(db: Database, now: datetime) -> int:
    """How many users are due: the planner's own definition, so the wait ends when it does."""
    with db.session() as session:
        return count_due(session, now)


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
    """Poll the database (never the broker) until no user is due and every digest is final.

    Gives up when the worker dies, when nothing has moved for ``STALL_S`` seconds (a task
    failed; the worker log says why) or after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last_change, last_seen = time.monotonic(), (-1, -1)
    while True:
        # "Nobody due" first, the digests second: a worker that plans between the two reads
        # then shows up in the counts. The other way round, a plan committed in between left
        # an empty count and nobody due, and the run ended reporting nothing sent.
        nobody_due = due_users(db, since) == 0
        counts = counts_since(db, since)
        final = sum(n for status, n in counts.items() if status in FINAL_STATUSES)
        progress("digests", final, max(total, final))
        seen = (sum(counts.values()), final)
        if seen != last_seen:
            last_change, last_seen = time.monotonic(), seen
        if seen[0] == final and nobody_due:
            return counts
        _check_stuck(alive, counts, last_change, deadline, timeout_s)
        time.sleep(0.25)


def _check_stuck(
    alive: Callable[[], bool],
    counts: Counter[str],
    last_change: float,
    deadline: float,
    timeout_s: float,
) -> None:
    now = time.monotonic()
    if not alive():
        raise RunTimeout(f"the worker stopped; see {LOG_HINT}")
    if now - last_change > STALL_S:
        raise RunTimeout(f"no progress for {STALL_S:.0f}s ({dict(counts)}); see {LOG_HINT}")
    if now > deadline:
        raise RunTimeout(f"timed out after {timeout_s:.0f}s with digests {dict(counts)}")


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
