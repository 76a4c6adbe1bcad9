"""``paperboy experiment interleave-*``: compare two rankers inside every digest.

Thin: parse options, call ``recsys.online.interleaved``, print. Registered on
``experiment_app`` in ``experiments/cli.py``; ``online-stop`` stops these experiments too.

    paperboy experiment interleave-create --name div --a '{}' --b '{"diversity": 0.5}'
    paperboy experiment interleave-report --name div [--json]
    paperboy experiment online-stop --name div
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from experiments.online_cli import _now, _session, _settings
from recsys.online.assignment import ExperimentError, RankerConfig

out, err = Console(), Console(stderr=True)

Name = Annotated[str, typer.Option("--name", help="The experiment's name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
CONFIG_HELP = (
    "Ranker {team} as a JSON object with any of min_score, weights, diversity (as in "
    'online-create; no exploration), e.g. \'{{"weights": {{"als": 0}}}}\'.'
)


def parse_config_option(text: str, team: str) -> RankerConfig:
    """``--a '{"diversity": 0.5}'`` as a ranker config; ``ExperimentError`` naming the option."""
    try:
        data = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ExperimentError(f"--{team} {text!r}: not JSON: {exc}") from exc
    return RankerConfig.parse(data, f"--{team}")


def interleave_create(
    name: Name,
    a: Annotated[str, typer.Option("--a", help=CONFIG_HELP.format(team="A"))],
    b: Annotated[str, typer.Option("--b", help=CONFIG_HELP.format(team="B"))],
    share: Annotated[
        float, typer.Option(help="Share of users (outside the holdout) interleaved, in (0, 1].")
    ] = 1.0,
    salt: Annotated[
        str | None, typer.Option(help="Salt of users' shares and of each digest's coin flips.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an interleaving experiment: each digest is a team-draft of rankers A and B."""
    from recsys.online.interleaved import create_interleave

    try:
        config_a, config_b = parse_config_option(a, "a"), parse_config_option(b, "b")
        with _session() as session:
            row = create_interleave(
                session, name, config_a, config_b, _now(), share=share, salt=salt
            )
            shown = {
                "experiment": row.name,
                "kind": row.kind,
                "status": row.status,
                "salt": row.salt,
                "share": share,
                "a": config_a.as_dict(),
                "b": config_b.as_dict(),
            }
    except ExperimentError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(shown))
        return
    for key, value in shown.items():
        out.print(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")


def interleave_report(
    name: Name,
    window_days: Annotated[
        int | None,
        typer.Option(help="Click attribution window (default: PAPERBOY_CLICK_ATTRIBUTION_DAYS)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Wins of A, wins of B and ties over digests with a click; A's share of the decided
    digests with a 95% Wilson interval and a sign test."""
    from recsys.online.interleaved import interleave_report as report

    days = window_days if window_days is not None else _settings().click_attribution_days
    try:
        with _session() as session:
            result = report(session, name, _now(), timedelta(days=days))
    except ExperimentError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(json.dumps(result))
        return
    out.print(_table(result))


def _table(result: dict[str, Any]) -> Table:
    """One row per figure: narrow enough for an 80-column terminal."""
    table = Table(
        title=f"{result['experiment']} ({result['status']}), clicks within "
        f"{result['window_days']:g} days\nA {json.dumps(result['a'])}\nB {json.dumps(result['b'])}"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    for key in ("digests", "skipped", "pending", "analysed", "clicked"):
        table.add_row(f"{key} digests" if key != "digests" else "digests logged", str(result[key]))
    table.add_row(
        "A wins / B wins / ties", f"{result['wins_a']} / {result['wins_b']} / {result['ties']}"
    )
    table.add_row("clicks on A / on B", f"{result['clicks_a']} / {result['clicks_b']}")
    share = result["preference_a"]
    low, high = result["preference_a_wilson"]
    table.add_row("A preferred (of decided)", "-" if share is None else f"{100 * share:.1f}%")
    table.add_row("95% Wilson interval", f"[{100 * low:.1f}%, {100 * high:.1f}%]")
    table.add_row("sign test p (two-sided)", f"{result['sign_test_p']:.3g}")
    return table


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)
