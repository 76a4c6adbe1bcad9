"""The ``paperboy`` command line. Thin: parse options, call a plain function, print."""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from recsys.logs import LEVELS
from recsys.logs import configure as configure_logging
from recsys.progress import progress_bars
from recsys.settings import DEV_SECRET_KEY, MAKE_A_SECRET, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Sub-commands that live in other top-level packages, imported only when called (or listed by
# --help), and only offered where that package is installed: an image without benchmarks/
# still runs every other command, and `paperboy ingest` does not pay for importing them.
LAZY_COMMANDS = {
    "experiment": ("experiments.cli", "experiment_app"),
    "bench": ("benchmarks.cli", "bench_app"),
}


class LazyGroup(TyperGroup):
    """The root command group, with :data:`LAZY_COMMANDS` resolved on first use.

    ``ctx`` and the command are typed ``Any``: newer typer releases carry a copy of click of
    their own, older ones use click itself, and this works with both.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        lazy = [name for name, (module, _) in LAZY_COMMANDS.items() if _installed(module)]
        return [*super().list_commands(ctx), *lazy]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in LAZY_COMMANDS or not _installed(LAZY_COMMANDS[cmd_name][0]):
            return super().get_command(ctx, cmd_name)
        module, attr = LAZY_COMMANDS[cmd_name]
        command = typer.main.get_group(getattr(importlib.import_module(module), attr))
        command.name = cmd_name
        return command


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module.partition(".")[0]) is not None


app = typer.Typer(
    cls=LazyGroup,
    help="Paperboy: personalised research-paper digests by e-mail.",
    no_args_is_help=True,
    add_completion=False,
)
digest_app = typer.Typer(help="Plan, score and send digests.", no_args_is_help=True)
app.add_typer(digest_app, name="digest")
models_app = typer.Typer(help="List, activate and roll back model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")
sources_app = typer.Typer(
    help="The paper sources harvested (PAPERBOY_SOURCES).", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")
# Results go to stdout (so `paperboy ingest x > out` captures them); progress, logs and
# errors to stderr. Soft wrap: a long `file:line: reason` stays one line for grep.
out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]


def _log_level(value: str | None) -> str | None:
    if value is not None and value.upper() not in LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LEVELS)}")
    return value and value.upper()


LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        callback=_log_level,
        help=f"Least severe level logged, one of {', '.join(LEVELS)} [default: PAPERBOY_LOG_LEVEL]",
    ),
]


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _logging_settings(log_level: str | None) -> Settings:
    """The settings with ``--log-level`` applied, and this process's logging configured.

    Children (uvicorn's processes, the Celery worker and beat) get the level and format from
    these settings, through their environment or the configuration they are handed.
    """
    settings = _settings()
    if log_level is not None:
        settings = settings.model_copy(update={"log_level": log_level.upper()})
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _database_session() -> Iterator[Session]:
    """A session on the configured database, committed on success, for a short command."""
    from recsys.db.session import Database

    db = Database(_settings().sqlalchemy_url)
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


def _emit(data: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(data, default=str))
        return
    out.print(f"[bold]{title}[/bold]")
    for key, value in data.items():
        out.print(f"  {key}: {value}")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, or a no-op callback when --json asks for quiet."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    with progress_bars(err) as update:
        yield update


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from recsys.db.session import Database

    Database(_settings().sqlalchemy_url).migrate()
    out.print("database is at the newest schema")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files: .jsonl, .csv, .xml/.atom, .txt")],
    as_json: JsonFlag = False,
) -> None:
    """Ingest paper files; a malformed file is reported with its line and nothing is written."""
    from recsys.catalog.papers import ingest_files
    from recsys.db.session import Database

    db = Database(_settings().sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        report = ingest_files(session, paths, _now())
    _emit(report.as_dict(), as_json, "ingest")
    if report.errors:
        for line in report.errors:
            err.print(f"[red]error:[/red] {line}")
        raise typer.Exit(1)


def _configured_sources(settings: Settings) -> list[Any]:
    from recsys.catalog.harvest.config import SourcesError, configured_sources

    try:
        return configured_sources(settings)
    except SourcesError as exc:
        err.print(f"[red]sources error:[/red] {exc}")
        raise typer.Exit(2) from exc


@sources_app.command("list")
def sources_list(as_json: JsonFlag = False) -> None:
    """Show the configured sources with their state: watermark, last run, last result."""
    from recsys.catalog.harvest.state import describe
    from recsys.db.session import Database

    settings = _settings()
    sources = _configured_sources(settings)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        rows = describe(session, sources)
    if as_json:
        print(json.dumps({"file": str(settings.sources), "sources": rows}))
        return
    out.print(f"[bold]sources[/bold] ({settings.sources})")
    for row in rows:
        _print_source(row)


def _print_source(row: dict[str, Any]) -> None:
    st = row["state"]
    out.print(
        f"  {row['name']} ({row['kind']}, {row['url']}): watermark {st['watermark']}, "
        f"last run {st['last_finished_at']} {st['last_status'] or 'never'}"
    )
    if st["last_result"]:
        out.print(f"    last result: {st['last_result']}")
    if st["last_error"]:
        out.print(f"    last error: {st['last_error']}")


@app.command()
def harvest(
    names: Annotated[list[str] | None, typer.Argument(help="Sources to run (default: all)")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Start here instead of each source's watermark"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Harvest the configured sources now; print read/new/updated/skipped/errors per source."""
    from recsys.catalog.harvest.run import harvest as run_harvest
    from recsys.catalog.harvest.run import options_from_settings, select_sources
    from recsys.db.session import Database

    settings = _settings()
    try:
        chosen = select_sources(_configured_sources(settings), names or [])
    except ValueError as exc:
        err.print(f"[red]harvest:[/red] {exc}")
        raise typer.Exit(2) from exc
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    notify = (lambda message: None) if as_json else (lambda message: err.print(message))
    options = options_from_settings(
        settings, _now(), since=since.date() if since else None, notify=notify
    )
    reports = run_harvest(db, chosen, options)
    if as_json:
        print(json.dumps({r.name: r.as_dict() for r in reports}))
    for r in [] if as_json else reports:
        out.print(
            f"{r.name}: {r.status}, read {r.read}, new {r.new}, updated {r.updated}, "
            f"skipped {r.skipped}, errors {len(r.errors)}, watermark {r.watermark}"
        )
    for line in (e for r in reports for e in r.errors):
        err.print(f"[red]error:[/red] {line}")
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write papers.jsonl, users.csv, events.csv")],
    users: Annotated[int, typer.Option(min=1)] = 100,
    papers: Annotated[int, typer.Option(min=10)] = 1000,
    seed: int = 0,
    as_json: JsonFlag = False,
) -> None:
    """Write a synthetic world (topic-coherent papers, users, clicks from a known model)."""
    from recsys.synth import generate_world, write_world

    world = generate_world(users, papers, seed=seed, now=_now())
    files = write_world(world, out)
    _emit({k: str(v) for k, v in files.items()}, as_json, "synthetic world")


@app.command(context_settings={"allow_extra_args": True})
def demo(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=1, help="How many demo subscribers")] = 20,
    papers: Annotated[
        list[Path] | None,
        typer.Option(help="Paper files to use instead of a synthetic corpus (several may follow)"),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Delete DATA_DIR first")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build a corpus and demo users, then train, plan, score and send one digest each."""
    from api.demo import DemoError, run_demo
    from api.digest_run import RunTimeout

    # `--papers a.txt b.txt` (a shell glob) leaves b.txt as an extra argument: take it too.
    paper_files = [*(papers or []), *(Path(arg) for arg in ctx.args)]
    settings = _settings()
    if reset and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    try:
        with _progress(not as_json) as progress:
            summary = run_demo(
                settings, _now(), n_users=users, paper_files=paper_files, progress=progress
            )
    except (DemoError, RunTimeout) as exc:
        err.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _emit(summary.as_dict(), as_json, "demo finished")


@app.command()
def train(as_json: JsonFlag = False) -> None:
    """Fit a new model version on the database and activate it if it passes the guard-rail
    (its off-policy SNIPS clicks per digest on the latest week of logged digests is no more
    than PAPERBOY_GUARDRAIL_TOLERANCE below the active model's). A refused version is kept,
    inactive, with its reason (see `paperboy models list`). Runs in this process; old
    versions beyond PAPERBOY_KEEP_MODELS are pruned."""
    from recsys.db.session import Database
    from recsys.training.nightly import TrainingError, train_exclusively

    settings = _settings()
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    try:
        with db.session() as session, _progress(not as_json) as progress:
            report = train_exclusively(session, settings, _now(), progress=progress)
    except TrainingError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if report is None:
        err.print("[red]another training is running; try again when it has finished[/red]")
        raise typer.Exit(1)
    title = "trained and activated" if report.activated else "trained but NOT activated"
    _emit(report.as_dict(), as_json, title)
    if not report.activated and not as_json:
        err.print(f"to use it anyway: paperboy models activate {report.version}")


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """The published model versions, oldest first, which one is active (*), and each one's
    guard-rail verdict (passed or refused, and why)."""
    from recsys.training.versions import describe_versions

    with _database_session() as session:
        versions = describe_versions(session)
    if as_json:
        print(json.dumps(versions))
        return
    for v in versions:
        mark = "*" if v["active"] else " "
        out.print(
            f"{mark} {v['version']}  papers={v['n_papers']}  users={v['n_users']}  {v['blend']}"
        )
        out.print(f"    guard-rail: {_guardrail_line(v['guardrail'])}", highlight=False)
    if not versions:
        out.print("no model trained yet: run `paperboy train`")


def _guardrail_line(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "none (trained before the guard-rail)"
    return f"{'passed' if verdict['passed'] else 'REFUSED'}: {verdict['reason']}"


@models_app.command("activate")
def models_activate(
    version: Annotated[str, typer.Argument(help="A version from `models list`")],
) -> None:
    """Make VERSION the active model on every host (workers pick it up at their next chunk).
    This overrides the guard-rail: a version it refused is activated all the same."""
    from recsys.training.store import activate, read_manifest

    try:
        with _database_session() as session:
            activate(session, version, _now())
            verdict = read_manifest(session, version).get("guardrail")
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if verdict is not None and not verdict["passed"]:
        err.print(f"[yellow]guard-rail overridden; it had refused:[/yellow] {verdict['reason']}")
    out.print(f"active model: {version}")


@models_app.command("rollback")
def models_rollback() -> None:
    """Activate the version trained before the active one, on every host."""
    from recsys.training.versions import NoPreviousVersion, rollback

    try:
        with _database_session() as session:
            version = rollback(session, _now())
    except NoPreviousVersion as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    out.print(f"active model: {version}")


@digest_app.command("run")
def digest_run(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sends")] = 600.0,
    as_json: JsonFlag = False,
) -> None:
    """Plan every due digest and score and send them through a worker; wait for the result."""
    from api.digest_run import NoModel, RunTimeout, run_digests

    try:
        with _progress(not as_json) as progress:
            counts = run_digests(_settings(), timeout_s=timeout, progress=progress)
    except NoModel as exc:
        err.print(f"[red]digest run refused:[/red] {exc}")
        raise typer.Exit(2) from exc
    except RunTimeout as exc:
        err.print(f"[red]digest run failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    _emit(counts, as_json, "digests")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    beat: Annotated[bool, typer.Option(help="Also run the beat scheduler")] = False,
    log_level: LogLevel = None,
) -> None:
    """Run a Celery worker (and beat); in embedded mode also a private Redis. Ctrl-C or
    SIGTERM stops all of them."""
    import time

    from workers.embedded import Embedded, stop_on_signals

    settings = _logging_settings(log_level)
    with stop_on_signals(), Embedded(settings, concurrency=concurrency, beat=beat) as runtime:
        err.print(f"worker running on {runtime.settings.broker_url}; Ctrl-C stops it")
        while runtime.alive():
            time.sleep(1)
        err.print("[red]a worker process exited; stopping[/red]")
        raise typer.Exit(1)
    err.print("stopped")


@app.command()
def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
    log_level: LogLevel = None,
) -> None:
    """Run the whole service on this machine: migrate, then the API, a worker and beat (and
    a private Redis when PAPERBOY_REDIS_URL is unset). Ctrl-C or SIGTERM stops them all."""
    from api.run import run_service
    from workers.embedded import stop_on_signals

    with stop_on_signals():
        settings = _logging_settings(log_level)
        code = run_service(settings, host, port, concurrency=concurrency, log=err.print)
        raise typer.Exit(code)
    err.print("stopped")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (one per core for tracked-link load).")
    ] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log")] = True,
    log_level: LogLevel = None,
) -> None:
    """Serve the HTTP API (tracked links, feedback, unsubscribe, JSON API)."""
    from api.app import serve as serve_app
    from recsys.db.session import Database

    settings = _logging_settings(log_level)
    refusal = serve_refusal(settings, host)
    if refusal is not None:
        err.print(f"[red]refusing to serve:[/red] {refusal}")
        raise typer.Exit(2)
    if migrate_first:
        Database(settings.sqlalchemy_url).migrate()
    serve_app(
        host,
        port,
        workers=workers,
        access_log=access_log,
        log_level=settings.log_level,
        log_format=settings.log_format,
    )


def serve_refusal(settings: Settings, host: str) -> str | None:
    """Why serving ``settings`` on ``host`` would be unsafe, or None when it is not.

    The development secret is in the source: on an address others can reach, anyone could
    sign a preferences link for any account and read, change or delete it.
    """
    if settings.secret_key != DEV_SECRET_KEY or is_loopback(host):
        return None
    return (
        f"{host} is reachable from other machines and PAPERBOY_SECRET_KEY is the built-in "
        f"development value; set PAPERBOY_SECRET_KEY to the output of {MAKE_A_SECRET} "
        "or serve on 127.0.0.1"
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere, so it is not loopback
        return False


if __name__ == "__main__":
    app()
