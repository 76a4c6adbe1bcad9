"""Benchmark: off-policy estimates over a week of logged digests in PostgreSQL (issue 15).

What is timed is :func:`recsys.online.offpolicy_logs.offpolicy_report`, the one function
behind ``paperboy experiment offpolicy`` and the nightly training guard-rail: it streams the
logged digests (items, pools, attributed clicks) chunk by chunk, rebuilds each chunk's
readers as of the ranking instant, re-ranks every pool with the active model for each logged
arm and the variant, and runs the estimators. The baseline is the floor of any reader of
the same rows: ``COPY ... TO STDOUT`` of the digests, their items, the click events and the
pools, measured in the same run.

Setup (not timed): a fresh schema; a synthetic world (papers with text, a few thousand
readers with clicks) trained into an active model; then, with ``COPY``, ``--digests``
logged digests over ``--days`` days: one digest per reader per day, ``--size`` papers each
from the day's pool, the shipped config with 2 exploration slots and a 5% uniform holdout
(propensities logged as the scorer logs them), and tracked clicks. The shown papers are
drawn at random rather than ranked by the model (ranking a million digests would be the send
benchmark), so ``reproduced_share`` is about 0: the estimates are meaningless, the work per
digest is the same.

Usage::

    createdb -h 127.0.0.1 -U postgres pb_bench_offpolicy
    paperboy bench offpolicy --digests 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pb_bench_offpolicy
    dropdb -h 127.0.0.1 -U postgres pb_bench_offpolicy
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text

from benchmarks.common import (
    PeakMemory,
    Status,
    load_average,
    machine,
    print_fields,
    scratch_database,
)
from recsys.db.models import Base
from recsys.db.session import Database
from recsys.digests.exploration import pack_mask
from recsys.online.assignment import HOLDOUT, RankerConfig
from recsys.online.offpolicy_logs import offpolicy_report
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train

TARGET_S = 60.0
TARGET_MB = 1024.0
T0 = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # the world's training instant; logs follow it
EXPLORE, HOLDOUT_SHARE, CLICK_P = 2, 0.05, 0.05
POOL_USERS = 1000  # readers per ranking chunk (one candidate_pools row each), as the scorer
WINDOW = timedelta(days=7)
NULL = "\\N"  # COPY's text format


@dataclass
class Result:
    digests: int
    readers: int
    days: int
    digest_size: int
    pool_papers: int
    clicks: int
    bootstrap_samples: int
    offpolicy_s: float = 0.0
    offpolicy_cpu_s: float = 0.0  # this process's CPU in the report: the rest is waiting
    digests_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    baseline_copy_out_s: float = 0.0
    baseline_copy_out_mb: float = 0.0
    ratio_to_baseline: float = 0.0
    setup_copy_in_s: float = 0.0
    setup_s: float = 0.0
    target_met: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    load_average_before: list[float] = field(default_factory=list)
    load_average_after: list[float] = field(default_factory=list)
    machine: str = ""
    date: str = ""


def bench(
    database_url: str,
    *,
    digests: int,
    days: int,
    size: int,
    pool_papers: int,
    samples: int,
    status: Status,
) -> Result:
    """Set up the logs, measure the baseline, then the off-policy report over all of them."""
    started = time.perf_counter()
    db = Database(database_url)
    readers = -(-digests // days)
    result = Result(digests, readers, days, size, pool_papers, 0, samples)
    with tempfile.TemporaryDirectory(prefix="pb-bench-offpolicy-") as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), secret_key="bench")
        model = _world(db, settings, pool_papers * days, status)
        copy_started = time.perf_counter()
        result.clicks = _copy_logs(db, model, readers, days, size, pool_papers, digests, status)
        result.setup_copy_in_s = round(time.perf_counter() - copy_started, 1)
        result.setup_s = round(time.perf_counter() - started, 1)
        status(f"baseline: COPY the same rows out ({result.setup_copy_in_s} s to copy them in)")
        result.baseline_copy_out_s, result.baseline_copy_out_mb = _copy_out(db)
        result.load_average_before = load_average()
        status(f"off-policy report over {digests:,} digests")
        with PeakMemory() as memory, db.session() as session:
            measured, cpu = time.perf_counter(), time.process_time()
            report = offpolicy_report(
                session, model, {"shipped": RankerConfig(explore_slots=EXPLORE)},
                now=T0 + timedelta(days=days) + WINDOW + timedelta(days=1), window=WINDOW,
                samples=samples, progress=_progress(status, digests),
            )  # fmt: skip
            result.offpolicy_s = round(time.perf_counter() - measured, 1)
            result.offpolicy_cpu_s = round(time.process_time() - cpu, 1)
    db.dispose()
    result.load_average_after = load_average()
    result.peak_rss_mb = memory.peak_total_mb
    result.digests_per_s = round(report["digests"] / max(result.offpolicy_s, 1e-9))
    result.ratio_to_baseline = round(result.offpolicy_s / result.baseline_copy_out_s, 1)
    result.target_met = result.offpolicy_s <= TARGET_S and result.peak_rss_mb <= TARGET_MB
    result.report = {k: report[k] for k in ("digests", "reproduced_share", "logging")}
    result.report["shipped"] = report["variants"]["shipped"]["estimates"]
    result.machine, result.date = machine(), datetime.now(UTC).isoformat(timespec="seconds")
    return result


def _progress(status: Status, total: int) -> Any:
    seen = [0]

    def report(n: int) -> None:
        before, seen[0] = seen[0], seen[0] + n
        if before // 100_000 != seen[0] // 100_000:
            status(f"  {seen[0]:,} / {total:,} digests")

    return report


# Setup -------------------------------------------------------------------------------------


def _world(db: Database, settings: Settings, n_papers: int, status: Status) -> Model:
    """Fresh schema, a synthetic world's papers and 2,000 readers, trained and activated."""
    from api.demo import load_world

    status("fresh schema, synthetic world, training")
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate()
    world = generate_world(2000, n_papers, clicks_per_user=5, seed=1, now=T0)
    with db.session() as s:
        load_world(s, world, T0)
        train(s, settings, T0)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    return model


def _copy_logs(
    db: Database, model: Model, readers: int, days: int, size: int, pool: int, total: int,
    status: Status,
) -> int:  # fmt: skip
    """COPY the readers, then each day's pools, digests, items and clicks; the click count."""
    rng = np.random.default_rng(7)
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT max(id) FROM users")
            first_user = int(cur.fetchone()[0]) + 1
            cur.execute("SELECT array_agg(id ORDER BY id) FROM papers")
            papers = np.array(cur.fetchone()[0], dtype=np.int64)
            users = np.arange(first_user, first_user + readers, dtype=np.int64)
            _copy(cur, "users (id, email, status, timezone, send_hour, frequency, digest_size, "
                  "created_at)", (f"{u}\tbench{u}@example.org\tactive\tUTC\t7\tdaily\t{size}\t"
                                  f"{T0.isoformat()}\n" for u in users.tolist()))  # fmt: skip
            ids = _Ids()
            for table in ids.last:  # the world's rows come first
                cur.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
                ids.last[table] = int(cur.fetchone()[0])
            clicks = 0
            for day in range(days):
                status(f"  COPY day {day + 1} of {days}")
                n = min(readers, total - day * readers)
                day_papers = np.sort(rng.choice(papers, pool, replace=False))
                clicks += _copy_day(cur, ids, model, day, users[:n], day_papers, size, rng)
            for table, last in ids.last.items():
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})")
            cur.execute(f"SELECT setval(pg_get_serial_sequence('users', 'id'), {users[-1]})")
        raw.commit()
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return clicks


@dataclass
class _Ids:
    last: dict[str, int] = field(
        default_factory=lambda: {
            "candidate_pools": 0,
            "digests": 0,
            "digest_items": 0,
            "events": 0,
        }  # fmt: skip
    )

    def take(self, table: str, n: int) -> NDArray[np.int64]:
        start = self.last[table] + 1
        self.last[table] += n
        return np.arange(start, start + n, dtype=np.int64)


def _copy_day(
    cur: Any, ids: _Ids, model: Model, day: int, users: NDArray[np.int64],
    papers: NDArray[np.int64], size: int, rng: np.random.Generator,
) -> int:  # fmt: skip
    ranked_at = T0 + timedelta(days=day, hours=1)
    sent = (ranked_at + timedelta(minutes=10)).isoformat()
    clicked_at = (ranked_at + timedelta(hours=2)).isoformat()
    n_pools = -(-len(users) // POOL_USERS)
    pool_ids = ids.take("candidate_pools", n_pools)
    listed = json.dumps(papers.tolist())
    at = ranked_at.isoformat()
    _copy(cur, "candidate_pools (id, paper_ids, model_version, created_at)",
          (f"{p}\t{listed}\t{model.version}\t{at}\n" for p in pool_ids))  # fmt: skip
    digest_ids = ids.take("digests", len(users))
    holdout = rng.random(len(users)) < HOLDOUT_SHARE
    mask = "\\\\x" + pack_mask(np.ones(len(papers), dtype=bool)).hex()
    shipped, uniform = json.dumps({"explore_slots": EXPLORE}), json.dumps({"uniform": True})
    _copy(cur, "digests (id, user_id, period, status, model_version, attempts, created_at, "
          "updated_at, sent_at, covers_from, variant, ranker_config, candidate_pool_id, "
          "candidate_mask)",
          (f"{d}\t{u}\tday{day}\tsent\t{model.version}\t1\t{sent}\t{sent}\t{sent}\t{sent}\t"
           f"{HOLDOUT if h else NULL}\t{uniform if h else shipped}\t"
           f"{pool_ids[i // POOL_USERS]}\t{mask}\n"
           for i, (d, u, h) in enumerate(zip(digest_ids.tolist(), users.tolist(),
                                             holdout.tolist(), strict=True))))  # fmt: skip
    return _copy_items(cur, ids, digest_ids, users, holdout, papers, size, rng, clicked_at)


def _copy_items(
    cur: Any, ids: _Ids, digest_ids: NDArray[np.int64], users: NDArray[np.int64],
    holdout: NDArray[np.bool_], papers: NDArray[np.int64], size: int,
    rng: np.random.Generator, clicked_at: str,
) -> int:  # fmt: skip
    """Each digest's papers (distinct, from the pool), propensities as logged, and clicks."""
    n_pool, clicks = len(papers), 0
    explored: list[bool] = (np.arange(size) >= size - EXPLORE).tolist()
    ranked_p: list[float] = np.where(explored, 1.0 / (n_pool - (size - EXPLORE)), 1.0).tolist()
    for start in range(0, len(digest_ids), 20_000):
        part = slice(start, start + 20_000)
        shown = papers[np.argsort(rng.random((len(digest_ids[part]), n_pool)), axis=1)[:, :size]]
        item_ids = ids.take("digest_items", shown.size).reshape(shown.shape)
        lines = io.StringIO()
        digest_list: list[int] = digest_ids[part].tolist()
        holdout_list: list[bool] = holdout[part].tolist()
        shown_rows: list[list[int]] = shown.tolist()
        item_rows = cast(list[list[int]], item_ids.tolist())
        for d, h, row, iid in zip(digest_list, holdout_list, shown_rows, item_rows, strict=True):
            for pos in range(size):
                p = 1.0 / n_pool if h else ranked_p[pos]
                e = "f" if h else ("t" if explored[pos] else "f")
                lines.write(f"{iid[pos]}\t{d}\t{row[pos]}\t{pos}\t0\t\t{p!r}\t{e}\n")
        _copy(cur, "digest_items (id, digest_id, paper_id, position, score, reason, propensity, "
              "explored)", [lines.getvalue()])  # fmt: skip
        hit = rng.random(shown.shape) < CLICK_P
        rows, cols = np.nonzero(hit)
        event_ids = ids.take("events", len(rows))
        _copy(cur, "events (id, user_id, paper_id, kind, digest_id, created_at, suspect)",
              (f"{e}\t{u}\t{p}\tclick\t{d}\t{clicked_at}\tf\n"
               for e, u, p, d in zip(event_ids.tolist(), users[part][rows].tolist(),
                                     shown[rows, cols].tolist(), digest_ids[part][rows].tolist(),
                                     strict=True)))  # fmt: skip
        clicks += len(rows)
    return clicks


def _copy(cur: Any, target: str, lines: Iterator[str] | list[str]) -> None:
    with cur.copy(f"COPY {target} FROM STDIN") as out:
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= 50_000:
                out.write("".join(buffer))
                buffer.clear()
        if buffer:
            out.write("".join(buffer))


def _copy_out(db: Database) -> tuple[float, float]:
    """Seconds and MB to COPY every row the report reads out to this process (the baseline)."""
    queries = [
        "COPY (SELECT id, user_id, sent_at, model_version, experiment_id, variant, "
        "ranker_config, candidate_pool_id, candidate_mask FROM digests) TO STDOUT",
        "COPY (SELECT digest_id, position, paper_id, propensity, explored FROM digest_items) "
        "TO STDOUT",
        "COPY (SELECT digest_id, paper_id, created_at FROM events WHERE digest_id IS NOT NULL) "
        "TO STDOUT",
        "COPY candidate_pools TO STDOUT",
    ]
    raw = db.engine.raw_connection()
    size = 0
    try:
        started = time.perf_counter()
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            for query in queries:
                with cur.copy(query) as copy:
                    for block in copy:
                        size += len(block)
        seconds = time.perf_counter() - started
    finally:
        raw.close()
    return round(seconds, 2), round(size / 2**20, 1)


def run_cli(
    database_url: str | None,
    *,
    digests: int,
    days: int,
    size: int,
    pool_papers: int,
    samples: int,
    as_json: bool,
) -> Result:
    """Run the benchmark and print its result: the body of ``paperboy bench offpolicy``."""
    result = bench(
        scratch_database(database_url), digests=digests, days=days, size=size,
        pool_papers=pool_papers, samples=samples, status=Status(),
    )  # fmt: skip
    if not print_fields(result, as_json):
        print(
            f"\noffpolicy over {result.digests:,} digests: {result.offpolicy_s} s "
            f"({result.digests_per_s:,} digests/s), peak RSS {result.peak_rss_mb} MB; "
            f"baseline COPY out {result.baseline_copy_out_s} s; ratio "
            f"{result.ratio_to_baseline}; target {'met' if result.target_met else 'NOT met'}"
        )
    return result
