"""Benchmark: the nightly training on a million synthetic interactions.

A synthetic world from ``recsys.synth`` (default 20,000 users x 50 clicks = 1,000,000
interactions over 50,000 papers) is loaded into a scratch PostgreSQL (not timed), then
``recsys.training.nightly.train(session, settings, now)`` is timed: everything the nightly
task does, from reading the database to activating the artifact.

Stages are measured from the outside: every function of ``recsys.training.nightly``, ``fit`` and
``transform`` of the embedder, ``fit`` of each recommender component, and the artifact
writer are wrapped with a timer for the run. Nested stages overlap (a hybrid's ``fit`` holds
its components' fits), so the stage times do not add up to the total.

**Baseline**, measured in the same run on the same data: the two library fits that any
version of the training must do, and nothing of ours around them:

- ``implicit``'s ALS fit on the same 1,000,000-interaction user x paper matrix, with the
  factors and iterations of ``recsys.recommender.AlsRidgeMap``'s defaults;
- the TF-IDF + truncated SVD embedder's fit and transform on the same 50,000 texts.

The ratio ``train / baseline`` is the price of the rest: the database snapshot, the other
components, the validation split and the artifact. A ratio near 1 means the training is
bound by the libraries; a large one points at our code.

Usage::

    python -m benchmarks.train --database-url postgresql+psycopg://postgres@127.0.0.1/SCRATCH
    paperboy bench train --json
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from benchmarks.common import (
    PeakMemory,
    Status,
    load_average,
    machine,
    print_fields,
    scratch_database,
)
from recsys import recommender
from recsys.catalog.embeddings import TfidfSvdEmbedder
from recsys.catalog.papers import ids_by_external_id, upsert_papers
from recsys.db.models import Base, InterestRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import World, generate_world
from recsys.training import artifacts, nightly, store

TARGET_S = 60.0
PAPER_SLICE = 5000


@dataclass
class Result:
    users: int
    papers: int
    interactions: int
    seconds: float = 0.0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    baseline_seconds: float = 0.0
    baseline_stages: dict[str, float] = field(default_factory=dict)
    baseline_peak_rss_mb: float = 0.0
    ratio_to_baseline: float = 0.0
    target_met: bool = False
    generate_s: float = 0.0
    load_s: float = 0.0
    load_average_before: list[float] = field(default_factory=list)
    load_average_after: list[float] = field(default_factory=list)
    machine: str = ""
    date: str = ""


# Setup -------------------------------------------------------------------------------------


def load(db: Database, world: World, now: datetime, status: Status) -> None:
    """Fresh schema, then the world's papers, users, interests and clicks, in bulk."""
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate()
    for start in range(0, world.n_papers, PAPER_SLICE):
        with db.session() as s:  # the ingestion path itself, one slice a transaction
            upsert_papers(s, world.papers[start : start + PAPER_SLICE], now)
    status(f"  {world.n_papers:,} papers stored")
    with db.session() as s:
        user_ids = _add_users(s, world, now)
        paper_ids = ids_by_external_id(s, [p.external_id or "" for p in world.papers])
    status(f"  {world.n_users:,} users stored")
    _copy_events(db, world, np.asarray(user_ids), np.asarray(paper_ids), now)
    status(f"  {len(world.events_user):,} clicks stored")
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))  # fresh statistics, as a database in use would have


def _add_users(s: Session, world: World, now: datetime) -> list[int]:
    rows = [
        {
            "email": email, "name": name, "status": "active", "timezone": "UTC",
            "send_hour": 7, "frequency": "daily", "digest_size": 10, "created_at": now,
            "confirmed_at": now, "next_digest_at": now + timedelta(days=1),
        }
        for email, name in zip(world.user_emails, world.user_names, strict=True)
    ]  # fmt: skip
    s.execute(insert(UserRow), rows)
    ids = list(s.scalars(select(UserRow.id).order_by(UserRow.id)))
    interests = [
        {"user_id": uid, "kind": "keyword", "value": keyword}
        for uid, keywords in zip(ids, world.user_interests, strict=True)
        for keyword in keywords
    ]
    if interests:
        s.execute(insert(InterestRow), interests)
    return ids


def _copy_events(
    db: Database,
    world: World,
    user_ids: np.ndarray[Any, np.dtype[np.int64]],
    paper_ids: np.ndarray[Any, np.dtype[np.int64]],
    now: datetime,
) -> None:
    # COPY: a million rows in seconds, where INSERTs take minutes; loading is not timed.
    users = user_ids[world.events_user]
    papers = paper_ids[world.events_paper]
    ages = world.events_age_s
    raw = db.engine.raw_connection()
    try:
        with raw.cursor() as cur:  # type: ignore[attr-defined]
            copy = "COPY events (user_id, paper_id, kind, created_at, suspect) FROM STDIN"
            with cur.copy(copy) as out:
                for u, p, age in zip(users.tolist(), papers.tolist(), ages.tolist(), strict=True):
                    out.write_row((u, p, "click", now - timedelta(seconds=age), False))
        raw.commit()
    finally:
        raw.close()


# Stage timers ------------------------------------------------------------------------------


class Stages:
    """Wall time and calls of each wrapped function, while :meth:`wrapped` is active."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def timer(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    @contextmanager
    def wrapped(self) -> Iterator[Stages]:
        """Wrap the training's stages for the duration of the block, then restore them."""
        originals: list[tuple[object, str, Any]] = []

        def patch(owner: object, attr: str, name: str) -> None:
            original = inspect.getattr_static(owner, attr)
            originals.append((owner, attr, original))
            setattr(owner, attr, self.timer(name, getattr(owner, attr)))

        for attr, value in vars(nightly).items():
            ours = inspect.isfunction(value) and value.__module__.startswith("recsys.")
            if ours and attr != "train":
                patch(nightly, attr, f"training.{attr}")
        for cls in (TfidfSvdEmbedder, *_components()):
            for attr in ("fit", "transform"):
                if attr in vars(cls):
                    patch(cls, attr, f"{cls.__name__}.{attr}")
        patch(artifacts, "write_artifact", "artifacts.write_artifact")
        patch(store, "publish", "store.publish")
        patch(store, "activate", "store.activate")
        try:
            yield self
        finally:
            for owner, attr, original in reversed(originals):
                setattr(owner, attr, original)

    def as_dict(self) -> dict[str, dict[str, float]]:
        order = sorted(self.seconds, key=self.seconds.__getitem__, reverse=True)
        return {k: {"seconds": round(self.seconds[k], 2), "calls": self.calls[k]} for k in order}


def _components() -> list[type]:
    """Every registered recommender component that has a ``fit`` of its own."""
    return [cls for cls in recommender.COMPONENTS if "fit" in vars(cls)]


# The timed run and the baseline ------------------------------------------------------------


def run_training(db: Database, settings: Settings, now: datetime, result: Result) -> None:
    stages = Stages()
    with stages.wrapped(), PeakMemory() as memory, db.session() as s:
        started = time.perf_counter()
        report = nightly.train(s, settings, now)
        result.seconds = round(time.perf_counter() - started, 2)
    result.stages = stages.as_dict()
    result.report = report.as_dict()
    result.peak_rss_mb = memory.peak_total_mb


def baseline(world: World, result: Result) -> None:
    """The library fits alone: implicit's ALS on the clicks, TF-IDF+SVD on the texts."""
    texts = [f"{p.title}. {p.abstract}" for p in world.papers]
    matrix = sparse.csr_matrix(
        (np.ones(len(world.events_user), np.float32), (world.events_user, world.events_paper)),
        shape=(world.n_users, world.n_papers),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    with PeakMemory() as memory:
        result.baseline_stages["tfidf_svd_fit_transform"] = _timed(
            lambda: TfidfSvdEmbedder(dim=64).fit(texts).transform(texts)
        )
        result.baseline_stages["implicit_als_fit"] = _timed(lambda: _als(matrix))
    result.baseline_seconds = round(sum(result.baseline_stages.values()), 2)
    result.baseline_peak_rss_mb = memory.peak_total_mb


def _als(matrix: sparse.csr_matrix) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    defaults = inspect.signature(recommender.AlsRidgeMap).parameters
    model = AlternatingLeastSquares(
        factors=defaults["factors"].default,
        regularization=defaults["regularization"].default,
        iterations=defaults["iterations"].default,
        alpha=defaults["alpha"].default,
        random_state=0,
    )
    model.fit(matrix, show_progress=False)


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return round(time.perf_counter() - started, 2)


def bench(
    database_url: str, *, n_users: int, n_papers: int, clicks_per_user: int, status: Status
) -> Result:
    now = datetime.now(UTC)
    status(
        f"generating the world: {n_users:,} users x {clicks_per_user} clicks, {n_papers:,} papers"
    )
    started = time.perf_counter()
    world = generate_world(n_users, n_papers, clicks_per_user=clicks_per_user, seed=7, now=now)
    result = Result(
        users=n_users, papers=n_papers, interactions=len(world.events_user),
        generate_s=round(time.perf_counter() - started, 1), machine=machine(),
        date=now.isoformat(),
    )  # fmt: skip
    status(f"loading into PostgreSQL (not timed): {result.interactions:,} interactions")
    db = Database(database_url)
    started = time.perf_counter()
    load(db, world, now, status)
    result.load_s = round(time.perf_counter() - started, 1)
    with tempfile.TemporaryDirectory(prefix="paperboy-bench-train-") as tmp:
        settings = Settings(
            environment="test", secret_key="benchmark-secret", data_dir=Path(tmp),
            database_url=database_url,
        )  # fmt: skip
        result.load_average_before = load_average()
        status(f"baseline: implicit ALS + TF-IDF/SVD alone; load {result.load_average_before}")
        # One BLAS thread, as in a worker process (workers.app): implicit's ALS runs its
        # own parallel loop and warns that BLAS threads on top of it slow it down.
        with threadpool_limits(limits=1, user_api="blas"):
            baseline(world, result)
            status(f"  {result.baseline_seconds} s: {result.baseline_stages}")
            status("timed: recsys.training.nightly.train")
            run_training(db, settings, now, result)
        result.load_average_after = load_average()
        status(f"  {result.seconds} s")
    db.dispose()
    if result.baseline_seconds:
        result.ratio_to_baseline = round(result.seconds / result.baseline_seconds, 2)
    result.target_met = result.seconds <= TARGET_S
    return result


# Command line ------------------------------------------------------------------------------


def run_cli(
    database_url: str | None,
    *,
    users: int,
    papers: int,
    clicks_per_user: int,
    as_json: bool,
) -> Result:
    """Run the benchmark and print its result: the body of ``paperboy bench train``."""
    url = scratch_database(database_url)
    result = bench(
        url, n_users=users, n_papers=papers, clicks_per_user=clicks_per_user, status=Status()
    )
    _print(result, as_json)
    return result


def _print(result: Result, as_json: bool) -> None:
    if print_fields(result, as_json):
        return
    print(
        f"\ntraining on {result.interactions:,} interactions: {result.seconds} s "
        f"(target {TARGET_S:.0f} s: {'met' if result.target_met else 'NOT met'}); "
        f"peak memory {result.peak_rss_mb} MB; baseline {result.baseline_seconds} s; "
        f"ratio {result.ratio_to_baseline}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--clicks-per-user", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PAPERBOY_BENCH_DATABASE_URL")
        or os.environ.get("PAPERBOY_TEST_DATABASE_URL"),
    )
    args = parser.parse_args(argv)
    run_cli(
        args.database_url, users=args.users, papers=args.papers,
        clicks_per_user=args.clicks_per_user, as_json=args.json,
    )  # fmt: skip


if __name__ == "__main__":
    main()
