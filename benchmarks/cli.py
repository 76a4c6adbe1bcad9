"""``paperboy bench``: the speed benchmarks of ``benchmarks/``, one command per stage.

Mounted by ``api/cli.py`` as ``app.add_typer(bench_app, name="bench")``. Each stage module
(``benchmarks.score``, ``.train``, ``.send``, ``.click``, ``.harvest``, ``.offpolicy``)
registers its own command below; the command generates its data (the synthetic world, or a
source stand-in), measures time and peak memory, and prints the ratio to a baseline measured
in the same run.
"""

from __future__ import annotations

from typing import Annotated

import typer

bench_app = typer.Typer(
    help="Speed benchmarks: each stage beside a baseline measured in the same run.",
    no_args_is_help=True,
)


# The scratch database every benchmark drops and refills.
_SCRATCH_DB = typer.Option(
    envvar=["PAPERBOY_BENCH_DATABASE_URL", "PAPERBOY_TEST_DATABASE_URL"],
    help="A SCRATCH PostgreSQL database: its schema is dropped and recreated.",
)


@bench_app.command("send")
def send(
    users: Annotated[int, typer.Option(min=1, help="Due subscribers, one digest each.")] = 100_000,
    mode: Annotated[
        str, typer.Option(help="SendGrid mode: 'template' (1,000 a request) or 'rendered'.")
    ] = "template",
    chunk: Annotated[int | None, typer.Option(help="Score chunk (default by mode).")] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1800.0,
    database_url: Annotated[str | None, _SCRATCH_DB] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Plan, rank and send one digest per user through a real worker, Redis, PostgreSQL and
    the local SendGrid stand-in; baseline: one client posting straight to the stand-in."""
    from benchmarks import send as bench_send

    bench_send.run_cli(database_url, users, mode, chunk, timeout, as_json)


@bench_app.command("train")
def train(
    users: Annotated[int, typer.Option(min=1, help="Synthetic users.")] = 20_000,
    papers: Annotated[int, typer.Option(min=1, help="Synthetic papers.")] = 50_000,
    clicks_per_user: Annotated[int, typer.Option(min=1, help="Mean clicks per user.")] = 50,
    database_url: Annotated[str | None, _SCRATCH_DB] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Time the nightly training (recsys.training.nightly.train) on users x clicks
    interactions, stage by stage; baseline: implicit's ALS fit and the TF-IDF+SVD fit alone on the
    same data."""
    from benchmarks import train as bench_train

    bench_train.run_cli(
        database_url, users=users, papers=papers, clicks_per_user=clicks_per_user,
        as_json=as_json,
    )  # fmt: skip


@bench_app.command("click")
def click(
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 2,
    connections: Annotated[int, typer.Option(min=1, help="Kept-alive client connections.")] = 16,
    seconds: Annotated[float, typer.Option(min=1, help="Length of each load.")] = 10.0,
    users: Annotated[int, typer.Option(min=1, help="Subscribers (10 links each).")] = 2000,
    papers: Annotated[int, typer.Option(min=1, help="Papers the links point at.")] = 1000,
    database_url: Annotated[str | None, _SCRATCH_DB] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Load the tracked-link endpoint GET /c/{token} of a real server from a second process:
    req/s, p50/p99 and clicks lost; baseline: the same load on GET /health."""
    from benchmarks import click as bench_click

    bench_click.run_cli(
        database_url, users=users, papers=papers, workers=workers, connections=connections,
        seconds=seconds, as_json=as_json,
    )  # fmt: skip


@bench_app.command("score")
def score(
    users: Annotated[int, typer.Option(min=1, help="Users to score.")] = 1_000_000,
    papers: Annotated[int, typer.Option(min=1, help="New papers each user is scored on.")] = 1000,
    width: Annotated[
        int,
        typer.Option(
            min=3,
            help="Columns of the hybrid vectors: 98 = 64 embedding (linear parts folded in) "
            "+ 33 LightFM + 1 popularity; the bare matmul costs about linearly in it.",
        ),
    ] = 98,
    repeats: Annotated[int, typer.Option(min=1, help="Rounds of every stage; medians.")] = 3,
    baseline_users: Annotated[
        int, typer.Option(min=1, help="Users the slow implicit/numpy baselines run on, scaled up.")
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Score users x papers, keep each user's top 50, re-rank by MMR to 10
    (recsys.recommender.fastrank); baselines: the bare float32 matmul, implicit.cpu.topk and numpy
    argpartition."""
    from benchmarks import score as bench_score

    bench_score.run_cli(users, papers, width, repeats, baseline_users, as_json)


@bench_app.command("harvest")
def harvest(
    records: Annotated[int, typer.Option(min=1, help="OAI-PMH records to harvest.")] = 50_000,
    page_size: Annotated[int, typer.Option(min=1, help="Records per OAI-PMH page.")] = 1000,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="PAPERBOY_BENCH_DATABASE_URL",
            help="A SCRATCH database (its schema is dropped); default a temporary SQLite file.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Harvest OAI-PMH records from the local stand-in into the database; baseline: the bare
    XML parse of the same pages in the same run."""
    from benchmarks import harvest as bench_harvest

    bench_harvest.run_cli(database_url, records, page_size, as_json)


@bench_app.command("offpolicy")
def offpolicy(
    digests: Annotated[int, typer.Option(min=1, help="Logged digests to read.")] = 1_000_000,
    days: Annotated[int, typer.Option(min=1, help="Days they span (one per reader a day).")] = 7,
    size: Annotated[int, typer.Option(min=3, max=50, help="Papers per digest.")] = 10,
    pool_papers: Annotated[int, typer.Option(min=10, help="Papers in each day's pool.")] = 300,
    bootstrap_samples: Annotated[
        int,
        typer.Option(
            min=0,
            help="Bootstrap resamples per interval: 200 as `paperboy experiment offpolicy`, 0 as "
            "the training guard-rail (point estimates only).",
        ),
    ] = 200,
    database_url: Annotated[str | None, _SCRATCH_DB] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Off-policy estimates (recsys.online.offpolicy_logs.offpolicy_report, as `paperboy
    experiment offpolicy` and the training guard-rail run it) over DIGESTS logged digests in
    PostgreSQL, written with COPY; baseline: COPY of the same rows out of the database."""
    from benchmarks import offpolicy as bench_offpolicy

    bench_offpolicy.run_cli(
        database_url, digests=digests, days=days, size=size, pool_papers=pool_papers,
        samples=bootstrap_samples, as_json=as_json,
    )  # fmt: skip
