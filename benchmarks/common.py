"""What every benchmark shares: the machine it ran on, its load, peak memory, status lines.

Benchmarks run on machines shared with other jobs, so each result carries the load average
seen when it was measured; the ratio to a baseline measured in the same run is what stays
comparable between runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

import psutil


def machine() -> str:
    """Architecture, cores, memory and OS of this machine, in one line."""
    memory = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.platform()}"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return [round(x, 2) for x in os.getloadavg()]


class Status:
    """Progress lines on stderr, each with the seconds since the benchmark started.

    Stdout stays for the result (``--json`` output must parse), so progress goes to stderr.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.started
            print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


class PeakMemory:
    """Peak resident memory of a process and its children, sampled every ``interval_s``.

    Use as a context manager around the measured part; ``peak_total_mb`` sums the tree (a
    worker and its pool), ``peak_process_mb`` is its largest single process.
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.2) -> None:
        self.root = psutil.Process(pid or os.getpid())
        self.interval_s = interval_s
        self.peak_total = 0
        self.peak_process = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak_total_mb(self) -> float:
        return round(self.peak_total / 2**20, 1)

    @property
    def peak_process_mb(self) -> float:
        return round(self.peak_process / 2**20, 1)

    def __enter__(self) -> PeakMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
            sizes = [p.memory_info().rss for p in processes]
        except psutil.Error:  # a child exited between listing and reading: next sample
            return
        self.peak_total = max(self.peak_total, sum(sizes))
        self.peak_process = max(self.peak_process, max(sizes))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live children.

    Less sensitive to other jobs on a shared machine than wall time: CPU per request is
    what a change to the code moves.
    """
    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # exited between listing and reading
            continue
        total += times.user + times.system
    return total


def scratch_database(database_url: str | None) -> str:
    """The benchmark's PostgreSQL URL, or exit saying what to pass (its schema is dropped)."""
    if not database_url or not database_url.startswith("postgresql"):
        raise SystemExit("give --database-url postgresql+psycopg://... (a scratch database)")
    return database_url


def print_fields(result: Any, as_json: bool) -> bool:
    """Print a result dataclass as one JSON object (True) or as ``key: value`` lines (False)."""
    if as_json:
        print(json.dumps(asdict(result)))
        return True
    for key, value in asdict(result).items():
        print(f"{key}: {value}")
    return False
