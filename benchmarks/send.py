"""Benchmark: one digest run for N synthetic users, end to end, in either SendGrid mode.

Real parts throughout: PostgreSQL, a private ``redis-server``, a Celery worker (prefork, one
process per core) and the SendGrid stand-in running as its own process, reached over HTTP.
The timed part starts when ``paperboy.plan`` is enqueued and ends when every digest is final;
the database is polled to see when planning, ranking and sending finished.

Usage::

    python -m benchmarks.send --users 100000 --mode rendered
    python -m benchmarks.send --users 100000 --mode template --json

It drops and recreates the schema in ``--database-url`` (default: ``PAPERBOY_BENCH_DATABASE_URL``,
else ``PAPERBOY_TEST_DATABASE_URL``), so point it at a scratch database. Results go to stdout;
``benchmarks/RESULTS.md`` records them by hand, with the machine and the date.
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
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update

from api.demo import load_world
from benchmarks.common import PeakMemory, Status, load_average, machine, scratch_database
from recsys.db.models import Base, DigestRow, EventRow, InterestRow, UserRow
from recsys.db.session import Database
from recsys.delivery.backends import MailSendClient, rendered_payload
from recsys.delivery.batch import template_payload
from recsys.digests.outbox import FINAL_STATUSES
from recsys.settings import Settings
from recsys.synth import World, generate_world
from recsys.testing.processes import RedisServer, free_port
from recsys.testing.samples import FROM, ada_digest
from recsys.testing.sendgrid import DEFAULT_API_KEY, RESET_PATH, STATS_PATH
from recsys.training.nightly import train
from workers.embedded import Embedded

BASE_USERS = 1000  # distinct synthetic profiles; the other users are copies with new addresses
N_PAPERS = 2000
EVENTS_PER_USER = 3
INTERESTS_PER_USER = 2
INSERT_BATCH = 10_000
BASELINE_S = 3.0
# Issue 13: 100,000 digests accepted by the stand-in within these, on the 2-core machine.
TARGET_S = {"rendered": 120.0, "template": 45.0}


@dataclass
class Result:
    mode: str
    users: int
    seconds_total: float = 0.0
    seconds_planned: float = 0.0
    seconds_ranked: float = 0.0
    emails_per_s: float = 0.0
    send_phase_emails_per_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    standin: dict[str, Any] = field(default_factory=dict)
    peak_worker_rss_mb: float = 0.0
    peak_process_rss_mb: float = 0.0
    sendgrid_concurrency: int = 1
    baseline_emails_per_s: float = 0.0  # as many bare clients as the run has connections
    baseline_one_connection_emails_per_s: float = 0.0
    ratio_to_baseline: float = 0.0
    send_phase_ratio_to_baseline: float = 0.0
    target_s: float = 0.0
    setup_s: float = 0.0
    machine: str = ""
    date: str = ""
    load_average_before: list[float] = field(default_factory=list)
    load_average_after: list[float] = field(default_factory=list)
    timeline: list[tuple[float, int, int]] = field(default_factory=list)


# Setup -------------------------------------------------------------------------------------


def prepare(db: Database, settings: Settings, n_users: int, now: datetime) -> None:
    """Fresh schema; the base world (trained on); then copies of its users up to ``n_users``."""
    Base.metadata.drop_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.migrate()
    world = generate_world(BASE_USERS, N_PAPERS, seed=1, now=now)
    with db.session() as s:
        load_world(s, world, now)
        train(s, settings, now)
    for start in range(BASE_USERS, n_users, INSERT_BATCH):
        with db.session() as s:
            _add_copies(s, world, range(start, min(start + INSERT_BATCH, n_users)), now)
    if n_users < BASE_USERS:
        with db.session() as s:  # fewer users than the base world: the rest are not due
            s.execute(
                update(UserRow)
                .where(UserRow.id > n_users)
                .values(next_digest_at=now + timedelta(days=1))
            )


def _add_copies(s: Any, world: World, numbers: range, now: datetime) -> None:
    rows = [
        {
            "email": f"bench{i:07d}@example.org", "status": "active", "timezone": "UTC",
            "send_hour": 7, "frequency": "daily", "digest_size": 10, "next_digest_at": now,
            "created_at": now, "confirmed_at": now,
        }
        for i in numbers
    ]  # fmt: skip
    s.execute(insert(UserRow), rows)
    ids = s.scalars(
        select(UserRow.id).where(UserRow.email.in_([r["email"] for r in rows])).order_by(UserRow.id)
    ).all()
    base_events = _events_by_user(world)
    paper_ids = dict(s.execute(text("SELECT external_id, id FROM papers")).all())
    interests, events = [], []
    for n, uid in zip(numbers, ids, strict=True):
        profile = n % BASE_USERS
        for keyword in world.user_interests[profile][:INTERESTS_PER_USER]:
            interests.append({"user_id": uid, "kind": "keyword", "value": keyword})
        for paper, age in base_events[profile][:EVENTS_PER_USER]:
            events.append(
                {
                    "user_id": uid, "paper_id": paper_ids[world.papers[paper].external_id],
                    "kind": "click", "created_at": now - timedelta(seconds=age),
                }
            )  # fmt: skip
    if interests:
        s.execute(insert(InterestRow), interests)
    if events:
        s.execute(insert(EventRow), events)


def _events_by_user(world: World) -> dict[int, list[tuple[int, float]]]:
    by_user: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for u, p, age in zip(world.events_user, world.events_paper, world.events_age_s, strict=True):
        by_user[int(u)].append((int(p), float(age)))
    return by_user


# The stand-in and the baseline -------------------------------------------------------------


@contextmanager
def standin_process(port: int) -> Iterator[str]:
    """The SendGrid stand-in in its own process, as a real provider would be."""
    argv = [sys.executable, "-m", "recsys.testing.sendgrid", "--port", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    json.loads(process.stdout.readline())  # it prints its URL once it listens
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def standin_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + STATS_PATH, timeout=10) as response:  # noqa: S310
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def standin_reset(url: str) -> None:
    request = urllib.request.Request(url + RESET_PATH, method="POST")
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the local stand-in
        pass


def baseline(url: str, mode: str, batch: int, concurrency: int = 1) -> float:
    """Emails per second bare clients get through the stand-in, with nothing else running.

    The same request bodies the run sends (a rendered digest, or a batch of ``batch``
    template personalizations), from ``concurrency`` threads each over its own kept-alive
    connection: the ceiling that the stand-in and the HTTP path put on the run.
    """
    client = MailSendClient(DEFAULT_API_KEY, url, timeout_s=30.0)
    digest = ada_digest()
    if mode == "template":
        emails = [replace(digest, digest_id=i, to_email=f"b{i}@example.org") for i in range(batch)]
        payload = template_payload(emails, template_id="d-bench", from_email=FROM)
        per_request = batch
    else:
        payload = rendered_payload(digest, FROM, ("digest",))
        per_request = 1
    started = time.perf_counter()

    def post_for_a_while(_: int) -> int:
        sent = 0
        while time.perf_counter() - started < BASELINE_S:
            client.post(payload, "baseline")
            sent += per_request
        return sent

    with ThreadPoolExecutor(concurrency) as pool:
        sent = sum(pool.map(post_for_a_while, range(concurrency)))
    return sent / (time.perf_counter() - started)


# The timed run -----------------------------------------------------------------------------


def _counts(db: Database, since: datetime) -> Counter[str]:
    with db.session() as s:
        rows = s.execute(
            select(DigestRow.status, func.count())
            .where(DigestRow.created_at >= since)
            .group_by(DigestRow.status)
        ).all()
    return Counter({status: int(n) for status, n in rows})


def run(
    db: Database,
    settings: Settings,
    n_users: int,
    result: Result,
    timeout_s: float,
    status: Status,
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    with Embedded(settings, concurrency=os.cpu_count() or 2) as runtime:
        assert runtime.celery is not None and runtime.worker_pid is not None
        time.sleep(3)  # let the worker finish booting: the run measures work, not startup
        result.load_average_before = load_average()
        status(f"timed run: {n_users:,} digests, load average {result.load_average_before}")
        with PeakMemory(runtime.worker_pid, interval_s=0.5) as memory:
            started = time.perf_counter()
            runtime.celery.send_task("paperboy.plan")
            _watch(db, since, n_users, started, result, timeout_s, status)
        result.load_average_after = load_average()
        result.peak_worker_rss_mb = memory.peak_total_mb
        result.peak_process_rss_mb = memory.peak_process_mb


def _watch(
    db: Database,
    since: datetime,
    n: int,
    started: float,
    result: Result,
    timeout_s: float,
    status: Status,
) -> None:
    while True:
        time.sleep(0.5)
        counts, elapsed = _counts(db, since), time.perf_counter() - started
        final = sum(v for k, v in counts.items() if k in FINAL_STATUSES)
        result.timeline.append((round(elapsed, 1), sum(counts.values()), final))
        if len(result.timeline) % 10 == 0:  # every 5 s
            status(f"{elapsed:6.1f}s into the run: {dict(counts)}")
        if not result.seconds_planned and sum(counts.values()) >= n:
            result.seconds_planned = round(elapsed, 2)
        if result.seconds_planned and not result.seconds_ranked and counts["planned"] == 0:
            result.seconds_ranked = round(elapsed, 2)
        if final >= n:
            result.seconds_total = round(elapsed, 2)
            result.statuses = dict(counts)
            return
        if elapsed > timeout_s:
            raise SystemExit(f"timed out after {timeout_s:.0f}s: {dict(counts)}")


# Command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--mode", choices=["rendered", "template"], default="rendered")
    parser.add_argument("--chunk", type=int, default=None, help="score chunk size")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PAPERBOY_BENCH_DATABASE_URL")
        or os.environ.get("PAPERBOY_TEST_DATABASE_URL"),
    )
    args = parser.parse_args(argv)
    run_cli(args.database_url, args.users, args.mode, args.chunk, args.timeout, args.json)


def run_cli(
    database_url: str | None,
    n_users: int,
    mode: str,
    chunk: int | None,
    timeout_s: float,
    as_json: bool,
) -> Result:
    """Run the benchmark and print its result: the body of ``paperboy bench send``."""
    database_url = scratch_database(database_url)
    if mode not in ("rendered", "template"):
        raise SystemExit(f"--mode must be 'rendered' or 'template', not {mode!r}")
    # 1,000 in both modes: a rendered send task now sends its chunk in groups of 100, many
    # requests at once, so small chunks no longer buy the two processes anything, and
    # ranking costs less per digest in larger chunks.
    chunk = chunk or 1000
    result = bench(database_url, n_users, mode, chunk, timeout_s, Status())
    _print(result, as_json)
    return result


def bench(
    database_url: str, n_users: int, mode: str, chunk: int, timeout_s: float, status: Status
) -> Result:
    result = Result(mode=mode, users=n_users, machine=machine(), date=datetime.now(UTC).isoformat())
    with tempfile.TemporaryDirectory(prefix="paperboy-bench-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        port = free_port()
        try:
            with standin_process(port) as url:
                settings = _settings(Path(tmp), database_url, redis_server.url, url, mode, chunk)
                db = Database(database_url)
                started = time.perf_counter()
                status(f"setup (not timed): schema, base world, {n_users:,} users, training")
                prepare(db, settings, n_users, datetime.now(UTC))
                result.setup_s = round(time.perf_counter() - started, 1)
                connections = _connections(settings, mode)
                status(f"baseline: bare clients posting to the stand-in for {BASELINE_S:.0f} s")
                result.baseline_one_connection_emails_per_s = round(baseline(url, mode, chunk), 1)
                rate = baseline(url, mode, chunk, connections)
                result.baseline_emails_per_s = round(rate, 1)
                result.sendgrid_concurrency = connections
                standin_reset(url)  # count only what the run sends
                run(db, settings, n_users, result, timeout_s, status)
                result.standin = standin_stats(url)
                db.dispose()
        finally:
            redis_server.stop()
    _derive(result)
    return result


def _connections(settings: Settings, mode: str) -> int:
    # Rendered mode: each worker process keeps up to sendgrid_concurrency connections.
    # Template mode sends one request at a time per process.
    processes = os.cpu_count() or 2
    return processes * (settings.sendgrid_concurrency if mode == "rendered" else 1)


def _settings(
    tmp: Path, database_url: str, redis_url: str, sendgrid_url: str, mode: str, chunk: int
) -> Settings:
    return Settings(
        environment="test",
        secret_key="benchmark-secret",
        data_dir=tmp / "var",
        database_url=database_url,
        redis_url=redis_url,
        email_backend="sendgrid",
        sendgrid_api_key=DEFAULT_API_KEY,
        sendgrid_api_host=sendgrid_url,
        sendgrid_mode=mode,  # type: ignore[arg-type]
        sendgrid_template_id="d-bench" if mode == "template" else None,
        sendgrid_batch_size=min(chunk, 1000),
        score_chunk_size=chunk,
        schedule_jitter_s=0,
    )


def _derive(result: Result) -> None:
    if result.seconds_total:
        result.emails_per_s = round(result.users / result.seconds_total, 1)
    send_s = result.seconds_total - result.seconds_ranked
    if result.seconds_ranked and send_s > 0:
        # Sends overlap ranking; this is the rate after the last digest was ranked.
        done = [t for t in result.timeline if t[0] >= result.seconds_ranked]
        sent_then = done[0][2] if done else result.users
        result.send_phase_emails_per_s = round((result.users - sent_then) / send_s, 1)
    if result.baseline_emails_per_s:
        result.ratio_to_baseline = round(result.emails_per_s / result.baseline_emails_per_s, 3)
        result.send_phase_ratio_to_baseline = round(
            result.send_phase_emails_per_s / result.baseline_emails_per_s, 3
        )
    result.target_s = TARGET_S[result.mode]


def _print(result: Result, as_json: bool) -> None:
    data = asdict(result)
    if as_json:
        print(json.dumps(data))
        return
    data.pop("timeline")
    for key, value in data.items():
        print(f"{key}: {value}")
    print(
        f"\n{result.users:,} digests sent in {result.seconds_total} s "
        f"(target for 100,000: {result.target_s:g} s); "
        f"peak worker memory {result.peak_worker_rss_mb} MB; "
        f"{result.emails_per_s} emails/s = {result.ratio_to_baseline} x the stand-in's "
        f"{result.baseline_emails_per_s} emails/s baseline"
    )


if __name__ == "__main__":
    main()
