"""Harvest sources into the catalogue: fetch page by page, upsert, move the watermark.

Each page is parsed whole before any of it is stored, then upserted in its own
transaction through :func:`recsys.catalog.papers.upsert_papers`; a bad answer fails the
source's run there, pages already stored stay (they are whole and re-harvesting them is
harmless), and the watermark stays where the last good run left it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from recsys.catalog.harvest import state
from recsys.catalog.harvest.config import BiorxivSource, SourceConfig
from recsys.catalog.harvest.fetch import HarvestError, RetryPolicy, SourceHttp, Timing, pages
from recsys.catalog.papers import upsert_papers
from recsys.catalog.sources.pages import Page, Skipped
from recsys.catalog.sources.record import vet_paper
from recsys.db.session import Database
from recsys.domain import IngestReport
from recsys.settings import Settings


@dataclass
class SourceReport:
    """What one run of one source did; a line of ``paperboy harvest``."""

    name: str
    kind: str
    status: str = "ok"  # ok | failed | busy (another run holds the source)
    read: int = 0  # records in the answers, good and bad
    new: int = 0
    updated: int = 0
    skipped: int = 0  # unchanged duplicates and records the source withdrew
    errors: list[str] = field(default_factory=list)  # bad records, then the run's failure
    watermark: str | None = None
    new_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "read": self.read,
            "new": self.new,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": list(self.errors),
            "watermark": self.watermark,
        }


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs besides the sources; ``now`` is passed in, never read."""

    now: datetime
    timeout_s: float = 30.0
    lease: timedelta = timedelta(hours=1)
    since: date | None = None  # overrides every source's watermark for this run
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    timing: Timing | None = None
    retry: RetryPolicy | None = None
    # Wall time for extending the lease as a long run goes on (``now`` is the run's start).
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    notify: Callable[[str], None] = lambda message: None  # progress lines (stderr in the CLI)


def options_from_settings(settings: Settings, now: datetime, **changes: Any) -> RunOptions:
    """Run options as the settings give them; ``changes`` set the rest (since, notify)."""
    return RunOptions(
        now=now,
        timeout_s=settings.harvest_timeout_s,
        lease=timedelta(seconds=settings.harvest_lease_s),
        **changes,
    )


def due_sources(
    sources: Sequence[SourceConfig],
    last_started: Mapping[str, datetime | None],
    now: datetime,
    every: timedelta,
) -> list[SourceConfig]:
    """The sources never run, or whose last run started ``every`` or longer before ``now``."""
    return [
        source
        for source in sources
        if (started := last_started.get(source.name)) is None or started <= now - every
    ]


def select_sources(sources: Sequence[SourceConfig], names: Sequence[str]) -> list[SourceConfig]:
    """The sources called ``names`` (all when empty); ValueError names an unknown one."""
    if not names:
        return list(sources)
    known = {source.name: source for source in sources}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"no source named {unknown[0]!r} (known: {', '.join(known) or 'none'})")
    return [known[name] for name in dict.fromkeys(names)]


def harvest(
    db: Database, sources: Sequence[SourceConfig], options: RunOptions
) -> list[SourceReport]:
    """Run each source once, one after another; one source failing does not stop the rest."""
    return [harvest_source(db, source, options) for source in sources]


def harvest_source(db: Database, source: SourceConfig, options: RunOptions) -> SourceReport:
    """Run ``source`` once if no other run holds it."""
    report = SourceReport(source.name, source.kind)
    with db.session() as session:
        if not state.acquire(
            session, source.name, source.kind, options.owner, options.now, options.lease
        ):
            report.status = "busy"
            return report
        mark = state.watermark(session, source.name)
    try:
        latest = _fetch_and_store(db, source, options, _start(source, mark, options), report)
    except HarvestError as exc:
        _fail(db, source, options, report, str(exc))
        return report
    except Exception as exc:
        # A bug or a database failure: free the source and record why, then let it surface.
        _fail(db, source, options, report, f"{source.name}: {type(exc).__name__}: {exc}")
        raise
    report.watermark = _next_watermark(source, mark, latest, options.now.date())
    _finish(db, source, options, report)
    return report


def _fail(
    db: Database, source: SourceConfig, options: RunOptions, report: SourceReport, error: str
) -> None:
    report.status = "failed"
    report.errors.append(error)
    _finish(db, source, options, report, error=error)


def _start(source: SourceConfig, mark: str | None, options: RunOptions) -> date:
    if options.since is not None:
        return options.since
    if mark:
        return date.fromisoformat(mark[:10])
    return options.now.date() - timedelta(days=source.first_days)


def _fetch_and_store(
    db: Database, source: SourceConfig, options: RunOptions, since: date, report: SourceReport
) -> str | None:
    latest: str | None = None
    with SourceHttp(
        source.name,
        timeout_s=options.timeout_s,
        min_interval_s=source.min_interval_s,
        timing=options.timing,
        retry=options.retry,
    ) as http:
        for number, page in enumerate(pages(http, source, since, options.now.date()), start=1):
            _store(db, source, page, options, report)
            latest = max(filter(None, (latest, page.latest)), default=None)
            options.notify(f"{source.name}: page {number}, {report.read} records read")
    return latest


def _store(
    db: Database, source: SourceConfig, page: Page, options: RunOptions, report: SourceReport
) -> None:
    page = _vetted(page)
    stored = _upsert(db, source, page, options)
    report.read += len(page.papers) + len(page.skipped)
    report.new += stored.new
    report.updated += stored.updated
    report.skipped += stored.skipped + sum(not s.bad for s in page.skipped)
    report.new_ids.extend(stored.new_ids)
    report.errors.extend(f"{source.name}: {s}" for s in page.skipped if s.bad)


def _vetted(page: Page) -> Page:
    """The page with every paper checked as files' papers are (``vet_paper``): one that
    cannot be stored is moved to the skipped records with the reason, the rest stay."""
    papers, skipped = [], list(page.skipped)
    for paper in page.papers:
        try:
            papers.append(vet_paper(paper))
        except ValueError as exc:
            skipped.append(Skipped(paper.external_id or paper.doi or paper.title[:80], str(exc)))
    return replace(page, papers=papers, skipped=skipped)


def _upsert(db: Database, source: SourceConfig, page: Page, options: RunOptions) -> IngestReport:
    # Two sources can bring one paper at the same moment (arXiv OAI and an arXiv feed): the
    # second insert then breaks the unique arXiv id. Storing the page again finds the row.
    try:
        return _upsert_holding_lease(db, source, page, options)
    except IntegrityError:
        pass
    try:
        return _upsert_holding_lease(db, source, page, options)
    except IntegrityError as exc:
        raise HarvestError(source.name, "upsert", f"cannot store the page: {exc.orig}") from None


def _upsert_holding_lease(
    db: Database, source: SourceConfig, page: Page, options: RunOptions
) -> IngestReport:
    """Upsert the page and extend the lease in one transaction, or neither."""
    with db.session() as session:
        stored = upsert_papers(session, page.papers, options.now)
        if not state.renew(session, source.name, options.owner, options.clock() + options.lease):
            # The lease ran out and another run took the source: roll this page back and
            # stop rather than write beside that run.
            reason = "lost the source's lease to another run (a run longer than the lease?)"
            raise HarvestError(source.name, "upsert", reason)
    return stored


def _next_watermark(
    source: SourceConfig, mark: str | None, latest: str | None, today: date
) -> str | None:
    if isinstance(source, BiorxivSource):
        # The interval asked for ended today; later postings of today come next run.
        return today.isoformat()
    return max(filter(None, (mark, latest)), default=None)


def _finish(
    db: Database,
    source: SourceConfig,
    options: RunOptions,
    report: SourceReport,
    error: str | None = None,
) -> None:
    result = {k: v for k, v in report.as_dict().items() if k not in ("kind", "status")}
    with db.session() as session:
        state.finish(
            session,
            source.name,
            options.owner,
            options.now,
            result=result,
            watermark=report.watermark,
            error=error,
        )
