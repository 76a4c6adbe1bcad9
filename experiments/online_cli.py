"""``paperboy experiment online-*``: define, stop and read online A/B experiments.

Thin: parse options, call ``recsys.online.experiments`` / ``recsys.online.analysis``,
print. Registered on ``experiment_app`` in ``experiments/cli.py``.

    paperboy experiment online-create --file explore2.toml
    paperboy experiment online-create --name explore2 \\
        --variant control=0.5 --variant 'explore=0.5:{"explore_slots": 2}'
    paperboy experiment online-report --name explore2 [--file explore2.toml] [--json]
        [--html report.html]
    paperboy experiment online-stop --name explore2
    paperboy experiment offpolicy --variant topk='{}' --variant 'bar={"min_score": 0.2}'
        [--as-of 2026-12-01T00:00] [--json]
    paperboy experiment export-logs --out logs/ [--since 2026-11-01] [--as-of 2026-12-01T00:00]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from experiments.reasons import CLOSE
from experiments.reasons import audit_reasons as audit_reasons_of
from recsys.db.session import Database
from recsys.online.assignment import ExperimentError, RankerConfig, Variant, parse_variants
from recsys.online.experiments import ExperimentPlan
from recsys.settings import Settings

out, err = Console(), Console(stderr=True)

Name = Annotated[str, typer.Option("--name", help="The experiment's name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
VARIANT_HELP = (
    "NAME=SHARE[:CONFIG], repeatable; CONFIG is a JSON object with any of explore_slots, "
    "min_score, weights, uniform, e.g. explore=0.5:'{\"explore_slots\": 2}'."
)


def parse_variant_option(text: str) -> dict[str, Any]:
    """``control=0.5`` or ``explore=0.5:{"explore_slots": 2}`` as a variant's JSON form."""
    name, sep, rest = text.partition("=")
    share, _, config = rest.partition(":")
    if not sep or not name.strip() or not share.strip():
        raise ExperimentError(f"--variant {text!r}: expected NAME=SHARE[:CONFIG]")
    try:
        allocation = float(share)
        parsed = json.loads(config) if config.strip() else {}
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ExperimentError(f"--variant {text!r}: {exc}") from exc
    return {"name": name.strip(), "allocation": allocation, "config": parsed}


ExperimentFile = Annotated[
    Path | None,
    typer.Option(
        "--file", dir_okay=False,
        help="An experiment TOML file (name, salt, alpha, control, horizon, [[variant]] "
        "tables); see docs/experiments.md.",
    ),
]  # fmt: skip


def online_create(
    name: Annotated[
        str | None, typer.Option("--name", help="The experiment's name (or --file).")
    ] = None,
    variant: Annotated[list[str] | None, typer.Option("--variant", help=VARIANT_HELP)] = None,
    salt: Annotated[
        str | None, typer.Option(help="Hash salt (default: random); reuse one to keep arms.")
    ] = None,
    file: ExperimentFile = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an online experiment: users split between variants by a salted hash of their id.

    Give either --file exp.toml or --name with --variant options."""
    from recsys.online.experiments import create_experiment

    try:
        plan = _plan_of(file, name, variant, salt)
        with _session() as session:
            row = create_experiment(
                session, plan.name, plan.variants, _now(), salt=plan.salt, plan=plan
            )
            shown = _describe(row.name, row.status, row.salt, plan.variants)
    except ExperimentError as exc:
        raise _fail(exc) from exc
    if file is not None:
        shown |= {"alpha": plan.alpha, "control": plan.control, "horizon": plan.horizon_dict()}
    _emit(shown, as_json)


def _plan_of(
    file: Path | None, name: str | None, variant: list[str] | None, salt: str | None
) -> ExperimentPlan:
    """The plan from the file, or from --name/--variant/--salt (not both)."""
    from recsys.online.experiments import load_plan

    if file is not None:
        if name or variant or salt:
            raise ExperimentError("give --file or --name/--variant/--salt, not both")
        return load_plan(file)
    if not name or not variant:
        raise ExperimentError("give --file exp.toml, or --name and at least one --variant")
    variants = parse_variants([parse_variant_option(v) for v in variant])
    return replace(ExperimentPlan.default(name, variants), salt=salt)


def online_stop(name: Name, as_json: JsonFlag = False) -> None:
    """Stop an online experiment: its users are ranked by the defaults again."""
    from recsys.online.experiments import stop_experiment

    try:
        with _session() as session:
            changed = stop_experiment(session, name, _now())
    except ExperimentError as exc:
        raise _fail(exc) from exc
    _emit({"experiment": name, "status": "stopped", "changed": changed}, as_json)


def online_report(
    name: Annotated[
        str | None, typer.Option("--name", help="The experiment's name (default: --file's).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            dir_okay=False,
            help="The experiment's TOML file: its alpha, control and horizon (default: the "
            "plan stored when the experiment was created; for one created without a file, "
            "alpha 0.05, the first variant as control, no horizon).",
        ),
    ] = None,
    window_days: Annotated[
        int | None,
        typer.Option(help="Click attribution window (default: PAPERBOY_CLICK_ATTRIBUTION_DAYS)."),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", dir_okay=False, help="Also write a self-contained HTML page."),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="Read the log as it stood at this instant (UTC): digests sent and clicks "
            "made by then. Default: now.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Click-through per arm and per position: interim results with always-valid intervals
    (safe to read every day; "can stop now" or "no decision yet"), and the fixed-horizon
    result once the planned horizon is reached and its click windows have closed."""
    from experiments.report import online_summary, online_tables, write_online_html
    from recsys.online.analysis import online_report as report
    from recsys.online.experiments import load_plan

    days = window_days if window_days is not None else _settings().click_attribution_days
    try:
        plan = load_plan(file) if file is not None else None
        if plan is not None and name not in (None, plan.name):
            raise ExperimentError(f"--name {name!r} but {file} defines {plan.name!r}")
        target = name or (plan.name if plan else None)
        if target is None:
            raise ExperimentError("give --name, or --file with the experiment's file")
        with _session() as session:
            now = _utc(as_of) or _now()
            result = report(session, target, now, timedelta(days=days), plan=plan)
    except ExperimentError as exc:
        raise _fail(exc) from exc
    if html_out is not None:
        write_online_html(result, html_out)
    if as_json:
        print(json.dumps(result))
        return
    out.print(_table(result))
    for line in online_summary(result)[1:]:
        out.print(line, highlight=False)
    for title, header, rows in online_tables(result):
        out.print(_rich_table(title, header, rows))
    if html_out is not None:
        out.print(f"wrote {html_out}", highlight=False)


def _rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def parse_offpolicy_variant(text: str) -> tuple[str, RankerConfig]:
    """``topk={}`` or ``bar={"min_score": 0.2}`` as a name and its ranker config."""
    name, sep, config = text.partition("=")
    if not sep or not name.strip():
        raise ExperimentError(f"--variant {text!r}: expected NAME=CONFIG, CONFIG a JSON object")
    try:
        parsed = json.loads(config) if config.strip() else {}
    except ValueError as exc:
        raise ExperimentError(f"--variant {text!r}: {exc}") from exc
    return name.strip(), RankerConfig.parse(parsed, f"--variant {name.strip()}")


Since = Annotated[
    datetime | None, typer.Option(help="Only digests sent at or after this date (UTC).")
]
Until = Annotated[datetime | None, typer.Option(help="Only digests sent before this date (UTC).")]
WindowDays = Annotated[
    int | None,
    typer.Option(help="Click attribution window (default: PAPERBOY_CLICK_ATTRIBUTION_DAYS)."),
]


def offpolicy(
    variant: Annotated[
        list[str],
        typer.Option("--variant", help="NAME=CONFIG, repeatable; CONFIG as in online-create."),
    ],
    since: Since = None,
    until: Until = None,
    window_days: WindowDays = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="Read the log as it stood at this instant (UTC): only digests whose click "
            "window had closed by then, so a rerun gives the same numbers. Default: now.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Estimate each variant's clicks per digest from the logged digests (IPS, SNIPS, DR,
    pseudo-inverse), beside the logging policy's observed value. Exit 3 if the logs cannot
    support a variant (the message says what logging would)."""
    from experiments.offpolicy_logs import offpolicy_report
    from recsys.training.model import load_active_model

    settings = _settings()
    days = window_days if window_days is not None else settings.click_attribution_days
    try:
        variants = dict(parse_offpolicy_variant(v) for v in variant)
        with _session() as session:
            model = load_active_model(session, settings.models_dir, settings.data_dir)
        if model is None:
            raise ExperimentError("no active model: train one first (paperboy train)")
        now = _utc(as_of) or _now()
        with _session() as session, _counter() as progress:
            result = offpolicy_report(
                session, model, variants, now=now, window=timedelta(days=days),
                since=_utc(since), until=_utc(until), seed=seed, progress=progress,
            )  # fmt: skip
    except (ExperimentError, ValueError) as exc:
        raise _fail(exc) from exc
    refused = {k: v["refused"] for k, v in result["variants"].items() if v["refused"]}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(_offpolicy_table(result))
    if result["other_model_share"] > 0:
        err.print(
            f"[yellow]warning:[/yellow] {100 * result['other_model_share']:.0f}% of the digests "
            f"were ranked by another model than the active {result['model_version']}: the "
            "other logged arms' propensities on them are re-computed, not logged"
        )
    if result["reproduced_share"] < 1:
        err.print(
            f"[yellow]warning:[/yellow] re-ranking reproduced "
            f"{100 * result['reproduced_share']:.1f}% of the logged digests' own rankings; the "
            "rest were ranked by another model, other settings or since-changed interests"
        )
    for name, why in refused.items():
        err.print(f"[red]refused:[/red] variant {name!r}: {why}")
    if refused:
        raise typer.Exit(3)


def export_logs(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write.", file_okay=False)],
    since: Since = None,
    until: Until = None,
    window_days: WindowDays = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="Export the log as it stood at this instant (UTC): only digests whose click "
            "window had closed by then, so a rerun writes the same files. Default: now.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the logged digests (pools, positions, propensities, clicks) as JSONL."""
    from experiments.logs import export_logs as export

    days = window_days if window_days is not None else _settings().click_attribution_days
    with _session() as session:
        manifest = export(
            session, out_dir, now=_utc(as_of) or _now(), window=timedelta(days=days),
            since=_utc(since), until=_utc(until),
        )  # fmt: skip
    _emit({**manifest, "out": str(out_dir)}, as_json)


def _offpolicy_table(result: dict[str, Any]) -> Table:
    observed = result["logging"]["observed"]
    table = Table(
        title=f"clicks per digest, {result['digests']} logged digests "
        f"(logging policy observed: {observed['value']:.3f} "
        f"[{observed['boot_low']:.3f}, {observed['boot_high']:.3f}])"
    )
    for column in ("variant", "estimator", "value", "95% CI", "95% bootstrap", "ESS", "max w"):
        table.add_column(column, justify="left" if column in ("variant", "estimator") else "right")
    for name, row in result["variants"].items():
        if row["refused"]:  # numbers the logs cannot back are not printed (--json keeps them)
            table.add_row(name, "refused", "-", "see below", "", "", "", end_section=True)
            continue
        for i, (key, e) in enumerate(row["estimates"].items()):
            table.add_row(
                name if i == 0 else "",
                key,
                f"{e['value']:.3f}",
                f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]",
                f"[{e['boot_low']:.3f}, {e['boot_high']:.3f}]",
                f"{e['effective_sample_size']:.0f}",
                f"{e['max_weight']:.1f}",
                end_section=i == len(row["estimates"]) - 1,
            )
    return table


@contextmanager
def _counter() -> Iterator[Callable[[int], None]]:
    """Digests read so far, on stderr."""
    done = 0

    def update(n: int) -> None:
        nonlocal done
        done += n
        sys.stderr.write(f"\rread {done} digests")

    yield update
    if done:
        sys.stderr.write("\n")


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def audit_reasons(
    threshold: Annotated[
        float, typer.Option(help="TF-IDF cosine at which a cited paper or interest is close.")
    ] = CLOSE,
    as_json: JsonFlag = False,
) -> None:
    """Check the reasons of every stored digest item with an independent TF-IDF similarity:
    the share of reasons citing a paper or an interest that cite one close to the item."""
    with _session() as session:
        audit = audit_reasons_of(session, threshold)
    _emit(audit.as_dict(), as_json)


def _table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['experiment']} ({result['status']}), clicks within "
        f"{result['window_days']:g} days of sending"
    )
    columns = ("arm", "users", "digests", "pending", "analysed", "shown", "clicked", "CTR")
    for column in (*columns, "95% Wilson", "95% bootstrap", "digests clicked"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, row in result["arms"].items():
        cells = [row[c] for c in columns[1:-1]]
        table.add_row(
            arm,
            *(str(c) for c in cells),
            _pct(row["ctr"]),
            _interval(row["ctr_wilson"]),
            _interval(row["ctr_bootstrap"]),
            _pct(row["digest_ctr"]),
        )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _interval(bounds: tuple[float, float]) -> str:
    return f"[{100 * bounds[0]:.2f}%, {100 * bounds[1]:.2f}%]"


def _describe(name: str, status: str, salt: str, variants: tuple[Variant, ...]) -> dict[str, Any]:
    return {
        "experiment": name,
        "status": status,
        "salt": salt,
        "variants": [v.as_dict() for v in variants],
    }


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data))
        return
    for key, value in data.items():
        out.print(f"{key}: {value if isinstance(value, str | bool) else json.dumps(value)}")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def _session() -> Iterator[Session]:
    database = Database(_settings().sqlalchemy_url)
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(exc: Exception) -> typer.Exit:
    # One line, however long the file's path: scripts grep for it.
    # escape: messages quote TOML such as "[[variant]]", which rich would read as markup.
    err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
    return typer.Exit(2)
