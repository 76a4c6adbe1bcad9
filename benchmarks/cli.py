"""``paperboy bench``: the speed benchmarks of ``benchmarks/``, one command per stage.

Mounted by ``api/cli.py`` as ``app.add_typer(bench_app, name="bench")``. Each stage module
(``benchmarks.score``, ``.train``, ``.send``, ``.click``) registers its own command below;
the command generates its data with the synthetic world, measures time and peak memory,
and prints the ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Speed benchmarks: each stage beside a baseline measured in the same run.",
    no_args_is_help=True,
)
