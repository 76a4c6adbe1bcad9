"""``paperboy experiment``: offline evaluations, thin over ``experiments.citeulike`` / ``.generic``,
and offline A/B experiments from TOML files (``run`` / ``report``, over ``experiments.runner``
and ``experiments.report``).

Mounted by ``api/cli.py`` as ``app.add_typer(experiment_app, name="experiment")``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from experiments import interleave_cli, online_cli
from experiments.evaluation import CUTOFFS
from recsys.progress import progress_bars

experiment_app = typer.Typer(
    help="Offline evaluation: published citeulike-a protocols, your own logged data, or A/B "
    "experiments described in TOML files.",
    no_args_is_help=True,
)
out, err = Console(), Console(stderr=True)
# Online A/B experiments (issue 6); their bodies live in experiments/online_cli.py.
experiment_app.command("online-create")(online_cli.online_create)
experiment_app.command("online-stop")(online_cli.online_stop)
experiment_app.command("online-report")(online_cli.online_report)
experiment_app.command("audit-reasons")(online_cli.audit_reasons)
# Off-policy estimates and exports from the service's own logs (issue 15).
experiment_app.command("offpolicy")(online_cli.offpolicy)
experiment_app.command("export-logs")(online_cli.export_logs)
# Interleaving experiments (issue 15 item 4), in experiments/interleave_cli.py.
experiment_app.command("interleave-create")(interleave_cli.interleave_create)
experiment_app.command("interleave-report")(interleave_cli.interleave_report)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (one object per split).")]
Seed = Annotated[int, typer.Option(help="Seed of the validation split and the models.")]
COLUMNS = (*(f"recall@{k}" for k in CUTOFFS), "ndcg@10")


class Split(StrEnum):
    cold = "cold"
    p1 = "p1"
    p10 = "p10"
    all = "all"


class Candidates(StrEnum):
    all = "all"
    unseen = "unseen"


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """Rich progress bars on stderr (or a silent callback under --json), one BLAS thread.

    implicit, LightFM and scikit-learn parallelise themselves; OpenBLAS threads inside their
    loops oversubscribe the cores (implicit warns about it) and made a full citeulike run
    ~45% slower on two cores, so BLAS runs single-threaded for the whole command.
    """
    with threadpool_limits(1, "blas"):
        if not enabled:
            yield lambda stage, done, total: None
        else:
            with progress_bars(err) as update:
                yield update


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"{report['split']}: {report['n_users']} users with test papers")
    table.add_column("model")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for model, values in report["results"].items():
        table.add_row(model, *(f"{values[column]:.3f}" for column in COLUMNS))
    out.print(table)
    weights = ", ".join(f"{k} {v:.3g}" for k, v in report["blend"]["weights"].items())
    out.print(f"blend weights ({report['blend']['source']}): {weights}")
    out.print(f"seconds: {report['seconds']}")


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


@experiment_app.command()
def citeulike(
    data: Annotated[
        Path, typer.Option("--data", help="The citeulike-a folder.", file_okay=False, exists=True)
    ],
    split: Annotated[Split, typer.Option(help="Protocol; 'all' runs the three in turn.")],
    as_json: JsonFlag = False,
    seed: Seed = 0,
) -> None:
    """Run a published citeulike-a protocol: recall@50/100/300 and NDCG@10 per model."""
    from experiments.citeulike import SPLITS, run_citeulike

    splits = SPLITS if split is Split.all else (split.value,)
    started = time.perf_counter()
    try:
        with _progress(not as_json) as progress:
            reports = run_citeulike(data, splits, seed=seed, progress=progress)
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    for report in reports:
        _print(report, as_json)
    if not as_json:
        out.print(f"total: {time.perf_counter() - started:.1f} s")


class Dataset(StrEnum):
    seed = "seed"
    citeulike = "citeulike"
    synth = "synth"


@experiment_app.command()
def encoders(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The shared data folder (holding seed-papers/ and citeulike-a/).",
            file_okay=False,
            exists=True,
        ),
    ],
    dataset: Annotated[
        list[Dataset] | None,
        typer.Option("--dataset", help="Run only these (repeat the option); default all."),
    ] = None,
    cache: Annotated[
        Path, typer.Option(help="Where neural embeddings are cached between runs.")
    ] = Path("var/encoder-cache"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compare paper encoders (TF-IDF + SVD, MiniLM, both) on query, author and synthetic
    protocols; the neural ones only with the paperboy\\[semantic] extra installed."""
    from experiments.encoders import compare_encoders

    chosen = [d.value for d in dataset] if dataset else [d.value for d in Dataset]
    started = time.perf_counter()
    try:
        with threadpool_limits(1, "blas"):
            report = compare_encoders(data, cache, datasets=chosen)
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    report["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        print(json.dumps(report))
        return
    if not report["neural"]:
        err.print("paperboy\\[semantic] is not installed: TF-IDF only")
    for protocol, rows in report["protocols"].items():
        metrics = list(next(iter(rows.values())))
        table = Table(title=protocol)
        for column in ("encoder", *metrics):
            table.add_column(column)
        for name, values in rows.items():
            table.add_row(name, *(f"{values[m]:.3f}" for m in metrics))
        out.print(table)
    out.print(f"seconds: {report['seconds']}")


@experiment_app.command()
def evaluate(
    papers: Annotated[Path, typer.Option(help="Papers JSONL.", dir_okay=False, exists=True)],
    train: Annotated[Path, typer.Option(help="Training CSV.", dir_okay=False, exists=True)],
    test: Annotated[Path, typer.Option(help="Test CSV.", dir_okay=False, exists=True)],
    candidates: Annotated[
        Candidates, typer.Option(help="'unseen': rank only papers absent from training.")
    ] = Candidates.all,
    as_json: JsonFlag = False,
    seed: Seed = 0,
) -> None:
    """Evaluate the hybrid and each component on your own papers and interaction logs."""
    from experiments.generic import run_generic

    try:
        with _progress(not as_json) as progress:
            report = run_generic(
                papers, train, test, candidates.value, seed=seed, progress=progress
            )
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    _print(report, as_json)


@experiment_app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Experiment TOML file.", dir_okay=False)],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Report folder (default: experiment-results/<name>)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the means and comparisons as JSON.")
    ] = False,
) -> None:
    """Run an offline A/B experiment; write results.json, summary.md and report.html."""
    from experiments.config import load_config
    from experiments.report import write_results
    from experiments.runner import run_experiment

    try:
        config = load_config(file)
        folder = out_dir or Path("experiment-results") / config.name
        with _progress(not as_json) as progress:
            results = run_experiment(config, progress=progress)
        paths = write_results(results, folder)
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    _print_experiment(paths["results"], as_json)


@experiment_app.command()
def report(
    folder: Annotated[
        Path, typer.Argument(help="Folder written by 'experiment run'.", file_okay=False)
    ],
) -> None:
    """Re-render summary.md and report.html from a run's results.json."""
    from experiments.report import render

    try:
        paths = render(folder)
    except (ValueError, OSError) as exc:
        raise _fail(exc) from exc
    out.print(f"wrote {paths['summary']} and {paths['html']}")


def _print_experiment(results_path: Path, as_json: bool) -> None:
    doc = json.loads(results_path.read_text(encoding="utf-8"))
    if as_json:
        keep = ("name", "dataset", "metrics", "comparisons", "seconds")
        summary = {key: doc[key] for key in keep}  # the per-user vectors stay in the file
        print(json.dumps({**summary, "out_dir": str(results_path.parent)}))
        return
    control = doc["config"]["control"]
    comparisons = {(c["metric"], c["variant"]): c for c in doc["comparisons"]}
    table = Table(title=f"{doc['name']}: each variant against {control}, the control")
    for column in ("metric", "variant", "mean", "95% CI", "diff", "95% CI of diff", "Holm p"):
        left = column in ("metric", "variant")
        table.add_column(column, justify="left" if left else "right", no_wrap=not left)
    for metric, entry in doc["metrics"].items():
        for i, (variant, values) in enumerate(entry["variants"].items()):
            row = comparisons.get((metric, variant))
            table.add_row(
                metric if i == 0 else "", variant, *_cells(values, row), end_section=False
            )
        table.add_section()
    out.print(table)
    out.print(f"report: {results_path.parent / 'report.html'} ({doc['seconds']['total']:.0f} s)")


def _cells(entry: dict[str, Any], row: dict[str, Any] | None) -> list[str]:
    def interval(low: float | None, high: float | None, sign: str = "") -> str:
        return "" if low is None or high is None else f"[{low:{sign}.3f}, {high:{sign}.3f}]"

    cells = ["–" if entry["mean"] is None else f"{entry['mean']:.3f}"]
    cells.append(interval(entry.get("ci_low"), entry.get("ci_high")))
    if row is None or row["p_holm"] is None:
        return [*cells, "", "", ""]
    p = "<0.001" if row["p_holm"] < 0.001 else f"{row['p_holm']:.3f}"
    return [*cells, f"{row['diff']:+.3f}", interval(row["ci_low"], row["ci_high"], "+"), p]
