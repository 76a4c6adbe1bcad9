"""Benchmark: the tracked-link endpoint (``GET /c/{token}``) under load from another process.

Real parts throughout: the API app of ``api/app.py`` served by uvicorn (as ``paperboy serve``
does, with ``--workers`` processes) on loopback against PostgreSQL, and the load generator
``benchmarks.loadgen`` in a second process. Setup (not timed): a fresh schema with users,
papers and sent digests, and a file of valid signed click links.

Four loads, each for ``--seconds``, over the same number of kept-alive connections:

0. ceiling: ``GET /docs``, a static page: what the generator and the bare server can do;
1. baseline: ``GET /health`` (the same server, one ``SELECT 1``), closed loop: the most the
   server and the generator do for a request that records nothing;
2. clicks, closed loop: the most clicks per second, with their latency;
3. clicks, open loop at the target rate (1,000/s): latency when the load does not wait for
   the server, so a server falling behind shows in p99.

No click may be lost: the click events stored during the loads must equal the 303 answers.

Usage::

    python -m benchmarks.click --database-url postgresql+psycopg://postgres@127.0.0.1/SCRATCH
    paperboy bench click --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, text

from benchmarks.common import (
    PeakMemory,
    Status,
    cpu_seconds,
    load_average,
    machine,
    print_fields,
    scratch_database,
)
from recsys.db.models import Base, DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.links import LinkMaker

TARGET_RPS = 1000.0
TARGET_P99_MS = 50.0
LINKS_PER_DIGEST = 10
WARM_UP_S = 2.0


@dataclass
class Result:
    users: int
    papers: int
    links: int
    server_workers: int
    connections: int
    seconds_per_load: float
    ceiling: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    click: dict[str, Any] = field(default_factory=dict)
    click_at_target_rate: dict[str, Any] = field(default_factory=dict)
    redirects: int = 0
    clicks_recorded: int = 0
    clicks_lost: int = 0
    ratio_to_baseline: float = 0.0
    target_met: bool = False
    peak_server_rss_mb: float = 0.0
    load_average_before: list[float] = field(default_factory=list)
    load_average_after: list[float] = field(default_factory=list)
    setup_s: float = 0.0
    machine: str = ""
    date: str = ""


# Setup -------------------------------------------------------------------------------------


def prepare(
    db: Database, settings: Settings, n_users: int, n_papers: int, now: datetime
) -> list[str]:
    """Fresh schema, users, papers, one sent digest per user; the paths of its click links."""
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate()
    with db.session() as s:
        s.execute(insert(PaperRow), [_paper(i, now) for i in range(n_papers)])
        s.execute(insert(UserRow), [_user(i, now) for i in range(n_users)])
        user_ids = list(s.scalars(select(UserRow.id).order_by(UserRow.id)))
        # Sent an hour ago: clicks now are a reader's, not a scanner's on delivery.
        digests = [_digest(uid, now - timedelta(hours=1)) for uid in user_ids]
        s.execute(insert(DigestRow), digests)
        digest_of = dict(s.execute(select(DigestRow.user_id, DigestRow.id)).tuples().all())
        paper_ids = list(s.scalars(select(PaperRow.id).order_by(PaperRow.id)))
    links = LinkMaker(settings.secret_key, settings.public_base_url, now + timedelta(days=30))
    return [
        urlsplit(
            links.click(uid, paper_ids[(n * LINKS_PER_DIGEST + k) % n_papers], digest_of[uid])
        ).path
        for n, uid in enumerate(user_ids)
        for k in range(LINKS_PER_DIGEST)
    ]


def _paper(i: int, now: datetime) -> dict[str, Any]:
    return {
        "title": f"Paper {i}", "title_key": f"paper-{i}", "abstract": f"About paper {i}.",
        "authors": ["A. Author"], "categories": ["cs.LG"], "source": "bench",
        "url": f"https://papers.example.org/{i}", "created_at": now, "updated_at": now,
    }  # fmt: skip


def _user(i: int, now: datetime) -> dict[str, Any]:
    return {
        "email": f"click{i:06d}@example.org", "status": "active", "timezone": "UTC",
        "send_hour": 7, "frequency": "daily", "digest_size": 10, "created_at": now,
        "confirmed_at": now, "next_digest_at": now + timedelta(days=1),
    }  # fmt: skip


def _digest(user_id: int, sent_at: datetime) -> dict[str, Any]:
    return {
        "user_id": user_id, "period": sent_at.date().isoformat(), "status": "sent",
        "attempts": 1, "created_at": sent_at, "updated_at": sent_at, "sent_at": sent_at,
    }  # fmt: skip


def count_clicks(db: Database) -> int:
    """Click events stored so far, scanner-flagged or not."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).where(EventRow.kind == "click")) or 0)


# The server and the load -------------------------------------------------------------------


@contextmanager
def server(settings: Settings, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """The API in its own process tree: ``api.app.serve``, as ``paperboy serve`` should run it.

    No access log: a line per request is the operator's choice, not the endpoint's cost.
    """
    from workers.embedded import settings_env  # the env that gives a child these settings

    code = (
        "from api.app import serve; "
        f"serve('127.0.0.1', {port}, workers={workers}, access_log=False, log_level='warning')"
    )
    env = {**os.environ, **settings_env(settings)}
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/health", process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the API server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the API server did not answer {url} within {timeout_s:.0f}s")


def load(
    url: str,
    paths: Path | str,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, Any]:
    """Run ``benchmarks.loadgen`` in a second process; its JSON summary."""
    argv = [
        sys.executable, "-m", "benchmarks.loadgen", url, "--connections", str(connections),
        "--seconds", str(seconds),
    ]  # fmt: skip
    argv += ["--paths", str(paths)] if isinstance(paths, Path) else ["--path", paths]
    if rate:
        argv += ["--rate", str(rate)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    summary: dict[str, Any] = json.loads(out.stdout)
    return summary


# The run -----------------------------------------------------------------------------------


def bench(
    database_url: str,
    *,
    n_users: int,
    n_papers: int,
    workers: int,
    connections: int,
    seconds: float,
    status: Status,
) -> Result:
    result = Result(
        users=n_users, papers=n_papers, links=n_users * LINKS_PER_DIGEST,
        server_workers=workers, connections=connections, seconds_per_load=seconds,
        machine=machine(), date=datetime.now(UTC).isoformat(),
    )  # fmt: skip
    from recsys.testing.processes import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="paperboy-bench-click-") as tmp:
        settings = _settings(Path(tmp), database_url, port)
        db = Database(database_url)
        started = time.perf_counter()
        status(f"setup (not timed): {n_users:,} users, {n_papers:,} papers, signed links")
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(prepare(db, settings, n_users, n_papers, _now())))
        result.setup_s = round(time.perf_counter() - started, 1)
        status(f"starting the API: uvicorn, {workers} worker process(es)")
        with server(settings, port, workers) as process, PeakMemory(process.pid) as memory:
            _loads(db, settings.public_base_url, paths_file, result, status, process.pid)
        result.peak_server_rss_mb = memory.peak_total_mb
        db.dispose()
    _derive(result)
    return result


def _loads(
    db: Database, url: str, paths: Path, result: Result, status: Status, server_pid: int
) -> None:
    c, seconds = result.connections, result.seconds_per_load

    def measured(target: Path | str, rate: float | None = None) -> dict[str, Any]:
        before = cpu_seconds(server_pid)
        summary = load(url, target, c, seconds, rate)
        used = cpu_seconds(server_pid) - before
        summary["server_cpu_ms_per_request"] = round(1000 * used / max(summary["requests"], 1), 3)
        return summary

    status(f"warm-up, {WARM_UP_S:.0f} s of each")
    load(url, "/health", c, WARM_UP_S)
    load(url, paths, c, WARM_UP_S)
    before = count_clicks(db)
    result.load_average_before = load_average()
    status(f"generator ceiling: GET /docs (static page, no database), {c} connections")
    result.ceiling = measured("/docs")
    status(f"  {result.ceiling['requests_per_s']} req/s, p99 {result.ceiling['p99_ms']} ms")
    status(f"baseline: GET /health, {c} connections, {seconds:.0f} s; load {load_average()}")
    result.health = measured("/health")
    status(f"  {result.health['requests_per_s']} req/s, p99 {result.health['p99_ms']} ms")
    status(f"clicks, closed loop, {c} connections, {seconds:.0f} s")
    result.click = measured(paths)
    status(f"  {result.click['requests_per_s']} req/s, p99 {result.click['p99_ms']} ms")
    status(f"clicks, open loop at {TARGET_RPS:.0f}/s, {seconds:.0f} s")
    result.click_at_target_rate = measured(paths, rate=TARGET_RPS)
    status(
        f"  {result.click_at_target_rate['requests_per_s']} req/s, "
        f"p99 {result.click_at_target_rate['p99_ms']} ms"
    )
    result.load_average_after = load_average()
    result.clicks_recorded = count_clicks(db) - before


def _derive(result: Result) -> None:
    loads = (result.click, result.click_at_target_rate)
    result.redirects = sum(int(x["statuses"].get("303", 0)) for x in loads)
    result.clicks_lost = result.redirects - result.clicks_recorded
    if result.health.get("requests_per_s"):
        result.ratio_to_baseline = round(
            result.click["requests_per_s"] / result.health["requests_per_s"], 3
        )
    others = sum(int(n) for x in loads for s, n in x["statuses"].items() if s != "303")
    result.target_met = (
        result.click["requests_per_s"] >= TARGET_RPS
        and result.click_at_target_rate["p99_ms"] <= TARGET_P99_MS
        and result.click["p99_ms"] <= TARGET_P99_MS
        and result.clicks_lost == 0
        and others == 0
        and not any(x["errors"] for x in loads)
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _settings(tmp: Path, database_url: str, port: int) -> Settings:
    return Settings(
        environment="test",
        secret_key="benchmark-secret",
        data_dir=tmp / "var",
        database_url=database_url,
        public_base_url=f"http://127.0.0.1:{port}",
    )


# Command line ------------------------------------------------------------------------------


def run_cli(
    database_url: str | None,
    *,
    users: int,
    papers: int,
    workers: int,
    connections: int,
    seconds: float,
    as_json: bool,
) -> Result:
    """Run the benchmark and print its result: the body of ``paperboy bench click``."""
    result = bench(
        scratch_database(database_url), n_users=users, n_papers=papers, workers=workers,
        connections=connections, seconds=seconds, status=Status(),
    )  # fmt: skip
    _print(result, as_json)
    return result


def _print(result: Result, as_json: bool) -> None:
    if print_fields(result, as_json):
        return
    click, health = result.click, result.health
    print(
        f"\nclicks: {click['requests_per_s']} req/s, p50 {click['p50_ms']} ms, "
        f"p99 {click['p99_ms']} ms (at {TARGET_RPS:.0f}/s: p99 "
        f"{result.click_at_target_rate['p99_ms']} ms); baseline /health "
        f"{health['requests_per_s']} req/s; ratio {result.ratio_to_baseline}; "
        f"{result.clicks_lost} clicks lost; peak server memory {result.peak_server_rss_mb} MB; "
        f"target {'met' if result.target_met else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PAPERBOY_BENCH_DATABASE_URL")
        or os.environ.get("PAPERBOY_TEST_DATABASE_URL"),
    )
    args = parser.parse_args(argv)
    run_cli(
        args.database_url, users=args.users, papers=args.papers, workers=args.workers,
        connections=args.connections, seconds=args.seconds, as_json=args.json,
    )  # fmt: skip


if __name__ == "__main__":
    main()
