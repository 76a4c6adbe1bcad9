"""What the /admin page shows, read from the database and the model store.

Each function is one small query an operator's page load can afford (a handful per load,
against indexed columns, bounded by ``LIMIT``). Totals since the start reuse
:mod:`recsys.observability`, the same facts ``/metrics`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from recsys import observability
from recsys.db.models import DigestRow, ExperimentRow, ProviderEventRow, UserRow
from recsys.digests.outbox import STATUSES
from recsys.online.experiments import running_experiment
from recsys.training import store
from recsys.training.versions import describe_versions

DAYS = 7
STUCK_LIMIT = 50
COMPLAINT_LIMIT = 20
COMPLAINTS = ("bounce", "spamreport")
SEARCH_PAGE = 25
MAX_QUERY_CHARS = 320  # an e-mail address is no longer


@dataclass(frozen=True)
class Day:
    """One UTC day's digests (by the day they were planned), per status."""

    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def digests_by_day(session: Session, now: datetime, days: int = DAYS) -> list[Day]:
    """The last ``days`` UTC days up to ``now``, oldest first.

    One grouped query a day rather than a ``date()`` in SQL: SQLite and PostgreSQL cut days
    differently (PostgreSQL by the session's time zone); a range is the same on both.
    """
    today = day_start(now)
    out = []
    for back in range(days - 1, -1, -1):
        start = today - timedelta(days=back)
        rows = session.execute(
            select(DigestRow.status, func.count())
            .where(DigestRow.created_at >= start, DigestRow.created_at < start + timedelta(days=1))
            .group_by(DigestRow.status)
        )
        out.append(Day(start, {status: n for status, n in rows}))
    return out


def totals(days: list[Day]) -> dict[str, int]:
    """Counts per status over ``days``, every status named (zeros too), in pipeline order."""
    summed = dict.fromkeys(STATUSES, 0)
    for day in days:
        for status, n in day.counts.items():
            summed[status] = summed.get(status, 0) + n
    return summed


@dataclass(frozen=True)
class Complaints:
    """Bounces and spam reports: since the start, in the window, and the latest ones."""

    all_time: dict[str, int]
    recent: dict[str, int]
    latest: list[ProviderEventRow]


def complaints(session: Session, since: datetime) -> Complaints:
    all_time = observability.provider_events_by_kind(session)
    recent_rows = session.execute(
        select(ProviderEventRow.kind, func.count())
        .where(ProviderEventRow.kind.in_(COMPLAINTS), ProviderEventRow.occurred_at >= since)
        .group_by(ProviderEventRow.kind)
    )
    recent = dict.fromkeys(COMPLAINTS, 0) | {kind: n for kind, n in recent_rows}
    latest = session.scalars(
        select(ProviderEventRow)
        .where(ProviderEventRow.kind.in_(COMPLAINTS))
        .order_by(ProviderEventRow.id.desc())
        .limit(COMPLAINT_LIMIT)
    ).all()
    return Complaints({k: all_time.get(k, 0) for k in COMPLAINTS}, recent, list(latest))


def stuck_digests(session: Session, now: datetime, stale_after: timedelta) -> list[Any]:
    """``unknown`` digests, and unfinished ones untouched for ``stale_after`` whose task
    holds no live lease: what the sweep would look at, oldest first, with the address."""
    before = now - stale_after
    unleased = DigestRow.lease_until.is_(None) | (DigestRow.lease_until < now)
    query = (
        select(DigestRow, UserRow.email)
        .join(UserRow, UserRow.id == DigestRow.user_id)
        .where(
            or_(
                DigestRow.status == "unknown",
                DigestRow.status.in_(("planned", "ranked", "sending"))
                & (DigestRow.updated_at < before)
                & unleased,
            )
        )
        .order_by(DigestRow.updated_at, DigestRow.id)
        .limit(STUCK_LIMIT)
    )
    return list(session.execute(query).all())


@dataclass(frozen=True)
class ModelView:
    """The active model version and its guard-rail metrics, when the manifest has them."""

    active: dict[str, Any] | None
    guardrail: dict[str, Any] | None
    versions: int


def model_view(session: Session) -> ModelView:
    versions = describe_versions(session)
    active = next((v for v in versions if v["active"]), None)
    guardrail = _guardrail(session, active["version"]) if active else None
    return ModelView(active, guardrail, len(versions))


def _guardrail(session: Session, version: str) -> dict[str, Any] | None:
    # Written by training from issue 11 on; older manifests have none, and that is shown.
    value = store.read_manifest(session, version).get("guardrail")
    return value if isinstance(value, dict) else None


def experiment(session: Session) -> ExperimentRow | None:
    return running_experiment(session)


@dataclass(frozen=True)
class SearchResult:
    query: str
    page: int
    total: int
    users: list[UserRow] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // SEARCH_PAGE))


def like_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, its ``%``, ``_`` and ``\\`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_subscribers(session: Session, query: str, page: int) -> SearchResult:
    """Subscribers whose address holds ``query`` (case-insensitive), newest first."""
    where = func.lower(UserRow.email).like(like_pattern(query.strip().lower()), escape="\\")
    total = session.scalar(select(func.count()).select_from(UserRow).where(where)) or 0
    users = session.scalars(
        select(UserRow)
        .where(where)
        .order_by(UserRow.id.desc())
        .limit(SEARCH_PAGE)
        .offset((page - 1) * SEARCH_PAGE)
    ).all()
    return SearchResult(query, page, total, list(users))
