"""Run one round of digests through the worker and watch the database until it is done."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from recsys.db.models import DigestRow
from recsys.db.session import Database
from recsys.digests.outbox import FINAL_STATUSES, count_due, stale
from recsys.progress import Progress
from recsys.settings import Settings
from recsys.training.store import active_version
from workers.embedded import Embedded

STALL_S = 180.0  # training a large corpus is the slowest step before the first digest moves
LOG_HINT = "DATA_DIR/logs/worker.log"


RESUME_LIMIT = 1_000_000  # digests an earlier run left half-done, resumed in one go
RESUME_CHUNK = 500


class RunTimeout(RuntimeError):
    """The digests did not all reach a final state in time."""


class NoModel(RuntimeError):
    """No model is active, so nothing could be ranked."""


def due_users(db: Database, now: datetime) -> int:
    """How many users are due: the planner's own definition, so the wait ends when it does."""
    with db.session() as session:
        return count_due(session, now)


def counts_since(db: Database, since: datetime, resumed: Sequence[int] = ()) -> Counter[str]:
    """Statuses of the digests planned since ``since`` and of those this run resumed."""
    with db.session() as session:
        rows = session.execute(
            select(DigestRow.status, func.count())
            .where(or_(DigestRow.created_at >= since, DigestRow.id.in_(list(resumed))))
            .group_by(DigestRow.status)
        ).all()
    return Counter({status: int(n) for status, n in rows})


def leftovers(db: Database, before: datetime) -> dict[str, list[int]]:
    """Digests an earlier run left ``planned`` or ``ranked``: safe to score or send again.

    ``sending`` and ``unknown`` ones are not here: whether the provider took them is for the
    sweep to find out, never for a blind resend.
    """
    with db.session() as session:
        return {s: stale(session, s, before, RESUME_LIMIT) for s in ("planned", "ranked")}


def wait_until_final(
    db: Database,
    since: datetime,
    total: int,
    alive: Callable[[], bool],
    timeout_s: float,
    progress: Progress,
    resumed: Sequence[int] = (),
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
        counts = counts_since(db, since, resumed)
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
    """Resume what an earlier run left, plan every due digest now, and wait until each is
    sent, skipped or failed.

    Raises
    ------
    NoModel
        Before anything is planned, when no model has been trained.
    RunTimeout
        When the worker dies, stalls or the digests are not final within ``timeout_s``.
    """
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        if active_version(session) is None:
            db.dispose()
            raise NoModel("no trained model yet: run `paperboy train` first")
    since = datetime.now(UTC)
    left = leftovers(db, since)
    resumed = [*left["planned"], *left["ranked"]]
    total = due_users(db, since) + len(resumed)
    with Embedded(settings) as runtime:
        assert runtime.celery is not None
        for task, ids in (("paperboy.score", left["planned"]), ("paperboy.send", left["ranked"])):
            for start in range(0, len(ids), RESUME_CHUNK):
                runtime.celery.send_task(task, args=[ids[start : start + RESUME_CHUNK]])
        runtime.celery.send_task("paperboy.plan")
        counts = wait_until_final(db, since, total, runtime.alive, timeout_s, progress, resumed)
    db.dispose()
    return {**counts, "resumed": len(resumed)} if resumed else dict(counts)
