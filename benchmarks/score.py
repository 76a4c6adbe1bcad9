"""Benchmark: score 1,000,000 users x 1,000 new papers and keep each user's diversified top 10.

What is timed (``recsys.recommender.fastrank.score_top_k(users, papers, k=10, pool=50)``): the dot
product of every user with every paper, each user's 50 best papers, and MMR re-ranking of
those 50 down to 10. Beside it, in the same run and on the same arrays:

- **bare matmul** (the baseline of the ratio): the float32 product alone, no top-k, blocked
  the two natural ways -- our way (one worker thread per core, BLAS on one thread each,
  ``block_rows`` users a block) and the BLAS way (8,192 users a block, BLAS on all cores).
  The faster of the two is the baseline, so the ratio is never flattered;
- **implicit**: ``implicit.cpu.topk`` (product plus top 50, in C++), then our :func:`mmr`;
- **numpy**: per block of 8,192 users, product, ``argpartition`` for the top 50, ``argsort``
  of those 50, then our :func:`mmr`.

The last two take tens of seconds for a million users, so they run on the first
``baseline_users`` users and their time is scaled up linearly (the output says so).

Data: not ``recsys.synth`` (it builds Python objects per user: minutes at a million), but a
seeded generator with the production hybrid's layout, ``width`` columns (default 98):

- an embedding block (64 columns at width 98): unit vectors around 50 topic centroids,
  users mixing 1-3 topics, times a per-user weight (the linear components folded in);
- a LightFM-like block (33 columns): small Gaussian factors;
- one popularity column: a heavy-tailed paper popularity, times a small user weight.

Usage::

    paperboy bench score                       # 1M users x 1,000 papers, width 98
    paperboy bench score --users 200000 --width 64 --json
    python -m benchmarks.score --users 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_info, threadpool_limits

from benchmarks.common import PeakMemory, load_average, machine
from recsys.recommender.fastrank import (
    BLOCK_ROWS,
    DEFAULT_LAMBDA,
    cosine_similarity,
    mmr,
    score_top_k,
)

TARGET_S = 2.5
TARGET_RATIO = 3.0
TARGET_MB = 2048.0
BLAS_BLOCK_ROWS = 8192  # the block of the conventional loop, as measured on the quiet machine
N_TOPICS = 50
N_LIGHTFM = 33
SUBSAMPLED = ("implicit", "numpy")  # stages run on baseline_users users, scaled up

Progress = Callable[[str], None]


def run(
    n_users: int = 1_000_000,
    n_papers: int = 1_000,
    width: int = 98,
    k: int = 10,
    pool: int = 50,
    *,
    lam: float = DEFAULT_LAMBDA,
    repeats: int = 3,
    baseline_users: int = 100_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every stage ``repeats`` times, interleaved, and report the medians.

    Parameters
    ----------
    n_users, n_papers : int
        Shape of the score matrix.
    width : int
        Columns of the hybrid vectors (default 98: 64 embedding + 33 LightFM + 1 popularity).
    k, pool : int
        Papers returned per user, and candidates MMR chooses them from.
    lam : float
        MMR trade-off.
    repeats : int
        Rounds of all stages; each stage's median is reported. Round 0 is preceded by a
        small warm-up (JIT compilation, page faults), which is not timed.
    baseline_users : int
        Users the implicit and numpy baselines run on; their time is scaled to ``n_users``.
    seed : int
        Seed of the generated vectors.
    progress : callable, optional
        Called with a short description before each step.

    Returns
    -------
    dict
        Seconds (medians), ratios to the bare matmul, peak memory, load, machine and
        whether each target is met; ``--json`` prints it as is.
    """
    say = progress or (lambda message: None)
    load_before = load_average()
    say(f"generating {n_users:,} x {width} user and {n_papers:,} paper vectors")
    users, papers = hybrid_vectors(n_users, n_papers, width, seed)
    sim = cosine_similarity(papers)
    sub = users[: min(baseline_users, n_users)]
    stages = _stages(users, papers, sub, sim, k, pool, lam)
    say("warming up (numba compilation, page faults)")
    _warm_up(users, papers, k, pool, lam)
    rounds = [_round(stages, repeat, repeats, say) for repeat in range(repeats)]
    say("checking the fused result against the numpy baseline")
    agreement = _agreement(papers, sub, sim, k, pool, lam)
    return _report(rounds, n_users, n_papers, width, k, pool, lam, len(sub), agreement, load_before)


# --- Data ---------------------------------------------------------------------------------


def hybrid_vectors(
    n_users: int, n_papers: int, width: int, seed: int = 0, chunk: int = 1 << 16
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Seeded user and paper vectors with the hybrid's layout (see the module docstring).

    Users are generated ``chunk`` rows at a time, so the temporaries stay small beside the
    ``n_users x width`` result.
    """
    if width < 3:
        raise ValueError(f"width must be >= 3 (embedding, LightFM and popularity), got {width}")
    n_lightfm = min(N_LIGHTFM, (width - 1) // 2)
    n_embed = width - 1 - n_lightfm
    rng = np.random.default_rng(seed)
    centroids = _unit(rng.standard_normal((N_TOPICS, n_embed)))
    papers = np.empty((n_papers, width), np.float32)
    topics = rng.integers(0, N_TOPICS, n_papers)
    papers[:, :n_embed] = _unit(
        centroids[topics] + 0.7 * _unit(rng.standard_normal((n_papers, n_embed)))
    )
    papers[:, n_embed:-1] = rng.normal(0, 0.3 / np.sqrt(n_lightfm), (n_papers, n_lightfm))
    papers[:, -1] = np.log1p(rng.pareto(2.0, n_papers)) / 3  # a few very popular papers
    users = np.empty((n_users, width), np.float32)
    for start in range(0, n_users, chunk):
        _user_chunk(users[start : start + chunk], centroids, n_embed, rng)
    return users, papers


def _user_chunk(
    out: NDArray[np.float32], centroids: NDArray[np.float64], n_embed: int, rng: np.random.Generator
) -> None:
    n, n_lightfm = len(out), out.shape[1] - 1 - n_embed
    mixes = rng.dirichlet(np.full(N_TOPICS, 0.05), n)  # most users lean on 1-3 topics
    taste = _unit(mixes @ centroids + 0.5 * _unit(rng.standard_normal((n, n_embed))))
    out[:, :n_embed] = taste * rng.uniform(0.6, 1.0, (n, 1))  # the folded linear weights
    out[:, n_embed:-1] = rng.normal(0, 0.3 / np.sqrt(n_lightfm), (n, n_lightfm))
    out[:, -1] = rng.uniform(0.05, 0.2, n)


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    unit: NDArray[np.float64] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


# --- The stages -----------------------------------------------------------------------------


def _stages(
    users: NDArray[np.float32],
    papers: NDArray[np.float32],
    sub: NDArray[np.float32],
    sim: NDArray[np.float32],
    k: int,
    pool: int,
    lam: float,
) -> dict[str, Callable[[], object]]:
    """Each stage as a no-argument callable, in the order they run in every round."""
    return {
        "bare_matmul": lambda: bare_matmul_blocked(users, papers, BLOCK_ROWS),
        "bare_matmul_blas": lambda: bare_matmul_blas(users, papers, BLAS_BLOCK_ROWS),
        "fused": lambda: score_top_k(users, papers, k, pool=pool, lam=lam, similarity=sim),
        "implicit": lambda: mmr(*implicit_top(sub, papers, pool), sim, k, lam),
        "numpy": lambda: mmr(*numpy_top(sub, papers, pool), sim, k, lam),
    }


def bare_matmul_blocked(
    users: NDArray[np.float32], papers: NDArray[np.float32], block_rows: int
) -> None:
    """The product alone, in ``score_top_k``'s layout: a worker per core, BLAS on one thread."""
    papers_t = papers.T
    starts = iter(range(0, len(users), block_rows))

    def worker() -> None:
        buffer = np.empty((block_rows, len(papers)), np.float32)
        for start in starts:
            block = users[start : start + block_rows]
            np.matmul(block, papers_t, out=buffer[: len(block)])

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(_cores()) as executor:
        for future in [executor.submit(worker) for _ in range(_cores())]:
            future.result()


def bare_matmul_blas(
    users: NDArray[np.float32], papers: NDArray[np.float32], block_rows: int
) -> None:
    """The product alone, one block after another, BLAS on all cores."""
    buffer = np.empty((block_rows, len(papers)), np.float32)
    for start in range(0, len(users), block_rows):
        block = users[start : start + block_rows]
        np.matmul(block, papers.T, out=buffer[: len(block)])


def implicit_top(
    users: NDArray[np.float32], papers: NDArray[np.float32], pool: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """``implicit.cpu.topk``: its own batches of users, in parallel, BLAS on one thread as
    implicit recommends."""
    from implicit.cpu.topk import topk

    with threadpool_limits(limits=1, user_api="blas"):
        ids, scores = topk(papers, users, pool, num_threads=_cores())
    return ids.astype(np.int32, copy=False), scores


def numpy_top(
    users: NDArray[np.float32], papers: NDArray[np.float32], pool: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Per block: product, ``argpartition`` of the top ``pool``, ``argsort`` of those."""
    cols = np.empty((len(users), pool), np.int32)
    best = np.empty((len(users), pool), np.float32)
    for start in range(0, len(users), BLAS_BLOCK_ROWS):
        scores = users[start : start + BLAS_BLOCK_ROWS] @ papers.T
        part = np.argpartition(-scores, pool - 1, axis=1)[:, :pool]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        cols[start : start + len(scores)] = np.take_along_axis(part, order, axis=1)
        best[start : start + len(scores)] = np.take_along_axis(part_scores, order, axis=1)
    return cols, best


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _warm_up(
    users: NDArray[np.float32],
    papers: NDArray[np.float32],
    k: int,
    pool: int,
    lam: float,
) -> None:
    """Compile the numba kernels and touch the code paths, off the clock."""
    few = users[:2048]
    score_top_k(few, papers, k, pool=pool, lam=lam)
    mmr(*numpy_top(few, papers, pool), cosine_similarity(papers), k, lam)
    implicit_top(few, papers, pool)


def _round(
    stages: dict[str, Callable[[], object]], repeat: int, repeats: int, say: Progress
) -> dict[str, dict[str, float]]:
    """One timing of every stage: seconds and the process's peak memory during it."""
    result = {}
    for name, stage in stages.items():
        say(f"round {repeat + 1}/{repeats}: {name}")
        # Sampling every 50 ms costs the timed stage well under 1 % of a core.
        with PeakMemory(interval_s=0.05) as memory, _timer() as elapsed:
            stage()
        result[name] = {"seconds": elapsed(), "peak_rss_mb": memory.peak_process_mb}
    return result


@contextmanager
def _timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    stop: list[float] = []
    yield lambda: stop[0] - start
    stop.append(time.perf_counter())


def _agreement(
    papers: NDArray[np.float32],
    sub: NDArray[np.float32],
    sim: NDArray[np.float32],
    k: int,
    pool: int,
    lam: float,
) -> float:
    """Share of the baseline users whose 10 papers (in order) the fused kernel matches.

    Not 1.0 only where two papers' scores differ in the last bit between the two ways of
    blocking the product (BLAS may sum in another order).
    """
    fused, _ = score_top_k(sub, papers, k, pool=pool, lam=lam, similarity=sim)
    reference, _ = mmr(*numpy_top(sub, papers, pool), sim, k, lam)
    return float((fused == reference).all(axis=1).mean())


# --- The report ---------------------------------------------------------------------------


def _report(
    rounds: list[dict[str, dict[str, float]]],
    n_users: int,
    n_papers: int,
    width: int,
    k: int,
    pool: int,
    lam: float,
    baseline_users: int,
    agreement: float,
    load_before: list[float],
) -> dict[str, Any]:
    scale = {name: n_users / baseline_users for name in SUBSAMPLED}
    seconds = _median_seconds(rounds, scale)
    baseline = min(seconds["bare_matmul"], seconds["bare_matmul_blas"])
    ratios = {name: round(value / baseline, 2) for name, value in seconds.items()}
    # The kernel's high-water mark of this process's resident memory: exact, not sampled.
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {
        "n_users": n_users, "n_papers": n_papers, "width": width, "k": k, "pool": pool,
        "lam": lam, "block_rows": BLOCK_ROWS, "threads": _cores(),
        "extrapolated": [
            f"{name}: run on {baseline_users:,} users, time x {scale[name]:g}"
            for name in SUBSAMPLED if scale[name] != 1
        ],
        "seconds": seconds,
        "ratio_to_bare_matmul": ratios,
        "stage_peak_rss_mb": {
            name: max(r[name]["peak_rss_mb"] for r in rounds) for name in seconds
        },
        "peak_rss_mb": peak_mb,
        "rounds": rounds,
        "agreement_with_numpy": round(agreement, 5),
        "targets": {
            "seconds": TARGET_S, "ratio": TARGET_RATIO, "peak_rss_mb": TARGET_MB,
            "seconds_met": seconds["fused"] <= TARGET_S,
            "ratio_met": ratios["fused"] <= TARGET_RATIO,
            "memory_met": peak_mb <= TARGET_MB,
        },
        "load_average_before": load_before,
        "load_average_after": load_average(),
        **_environment(),
    }  # fmt: skip


def _median_seconds(
    rounds: list[dict[str, dict[str, float]]], scale: dict[str, float]
) -> dict[str, float]:
    """Each stage's median over the rounds, scaled up for the subsampled ones."""
    return {
        name: round(statistics.median(r[name]["seconds"] for r in rounds) * scale.get(name, 1), 3)
        for name in rounds[0]
    }


def _environment() -> dict[str, Any]:
    blas = [
        f"{lib['internal_api']} {lib.get('version')} ({lib['num_threads']} threads)"
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    ]
    return {"machine": machine(), "cpu": _cpu_model(), "blas": blas}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


STAGE_LABELS = {
    "bare_matmul": "bare matmul, our blocks",
    "bare_matmul_blas": "bare matmul, BLAS blocks",
    "fused": "fused (score_top_k)",
    "implicit": "implicit.cpu.topk + mmr",
    "numpy": "numpy argpartition + mmr",
}


def print_table(report: dict[str, Any]) -> None:
    """The human form: one row per stage, then the targets."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{report['n_users']:,} users x {report['n_papers']:,} papers, width "
        f"{report['width']}, top {report['k']} by MMR of the top {report['pool']}, median of "
        f"{len(report['rounds'])}"
    )
    for column in ("stage", "seconds", "x bare matmul", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, seconds in report["seconds"].items():
        table.add_row(
            STAGE_LABELS[name] + (" *" if name in SUBSAMPLED else ""),
            f"{seconds:.2f}",
            f"{report['ratio_to_bare_matmul'][name]:.2f}",
            f"{report['stage_peak_rss_mb'][name]:.0f}",
        )
    console = Console()
    console.print(table)
    for line in report["extrapolated"]:
        console.print(f"* {line}")
    if (report["n_users"], report["n_papers"]) != (1_000_000, 1_000):
        console.print("(the targets are set for 1,000,000 users x 1,000 papers)")
    targets = report["targets"]
    console.print(
        f"targets: fused <= {TARGET_S} s {_met(targets['seconds_met'])}, <= {TARGET_RATIO}x bare "
        f"matmul {_met(targets['ratio_met'])}, peak {report['peak_rss_mb']:.0f} MB <= "
        f"{TARGET_MB:.0f} MB {_met(targets['memory_met'])}; load average "
        f"{report['load_average_before']} -> {report['load_average_after']}; agreement with "
        f"numpy {report['agreement_with_numpy']:.4f}"
    )


def run_cli(
    users: int, papers: int, width: int, repeats: int, baseline_users: int, as_json: bool
) -> dict[str, Any]:
    """Run with a status line on stderr, print the table or JSON: ``paperboy bench score``."""
    from rich.console import Console

    with Console(stderr=True).status("starting", spinner="dots") as status:
        report = run(
            users, papers, width, repeats=repeats, baseline_users=baseline_users,
            progress=lambda message: status.update(message),
        )  # fmt: skip
    if as_json:
        print(json.dumps(report))
    else:
        print_table(report)
    return report


def _met(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]NOT met[/red]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--width", type=int, default=98)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-users", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run_cli(args.users, args.papers, args.width, args.repeats, args.baseline_users, args.json)


if __name__ == "__main__":
    main()
