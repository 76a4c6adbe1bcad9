"""A small HTTP/1.1 load generator: keep-alive connections over raw asyncio sockets.

Run as its own process (``python -m benchmarks.loadgen``) so that the server under test and
the load do not share an interpreter. Each connection sends a GET, reads the status line,
the headers and a ``Content-Length`` body, records the latency, and goes on with the next
path (paths are taken round-robin from a file, one a line).

Two modes:

- closed loop (default): every connection sends its next request as soon as the previous
  answer is in; the throughput is the most the server gives at that concurrency.
- open loop (``--rate``): requests are due at a fixed rate, spread over the connections, and
  latency is counted from when a request was *due*, not when it was sent, so a server that
  falls behind shows it in p99 instead of silently slowing the load (coordinated omission).

The answer is one JSON object on stdout: requests, seconds, req/s, latency percentiles in
ms, the count of each status code, and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np


@dataclass
class Load:
    """What the load did, and how the server answered."""

    requests: int = 0
    seconds: float = 0.0
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    connections: int = 0
    rate: float | None = None


class _Connection:
    """One kept-alive connection; reopened after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: {AGENT}\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, close = _parse_head(head)
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# A reader's browser: the clicks under load must count as interest, not as a scanner's.
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, length, close


async def _worker(
    conn: _Connection,
    paths: Sequence[str],
    first: int,
    step: int,
    deadline: float,
    interval: float | None,
    out: tuple[list[float], Counter[int], list[int]],
) -> None:
    latencies, statuses, errors = out
    i, due = first, time.perf_counter()
    while True:
        if interval is not None:
            due += interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        started = due if interval is not None else time.perf_counter()
        if started >= deadline:
            break
        try:
            status = await conn.get(paths[i % len(paths)])
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors[0] += 1
            await conn.close()
            continue
        latencies.append(time.perf_counter() - started)
        statuses[status] += 1
        i += step


async def run_load(
    url: str,
    paths: Sequence[str],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> Load:
    """Send GETs for ``paths`` to ``url`` for ``seconds`` over ``connections`` connections."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conns = [_Connection(host, port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = [0]
    interval = connections / rate if rate else None
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _worker(c, paths, n, connections, deadline, interval, (latencies, statuses, errors))
            for n, c in enumerate(conns)
        )
    )
    elapsed = time.perf_counter() - started
    for c in conns:
        await c.close()
    return _summary(latencies, statuses, errors[0], elapsed, connections, rate)


def _summary(
    latencies: list[float],
    statuses: Counter[int],
    errors: int,
    elapsed: float,
    connections: int,
    rate: float | None,
) -> Load:
    ms = np.asarray(latencies) * 1000.0 if latencies else np.zeros(1)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Load(
        requests=len(latencies),
        seconds=round(elapsed, 3),
        requests_per_s=round(len(latencies) / elapsed, 1),
        p50_ms=round(float(p50), 2),
        p90_ms=round(float(p90), 2),
        p99_ms=round(float(p99), 2),
        max_ms=round(float(ms.max()), 2),
        statuses={str(k): v for k, v in sorted(statuses.items())},
        errors=errors,
        connections=connections,
        rate=rate,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--paths", type=Path, help="file of request paths, one a line")
    parser.add_argument("--path", default="/health", help="the one path, without --paths")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s")
    args = parser.parse_args(argv)
    paths = args.paths.read_text().split() if args.paths else [args.path]
    load = asyncio.run(
        run_load(
            args.url, paths, connections=args.connections, seconds=args.seconds, rate=args.rate
        )
    )
    print(json.dumps(asdict(load)))


if __name__ == "__main__":
    main()
