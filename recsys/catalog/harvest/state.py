"""Each source's harvesting state in the database: watermark, run lease, last result.

A run holds its source's lease, taken with one conditional ``UPDATE`` (the row count says
whether this run got it), so two workers or a worker and ``paperboy harvest`` never run
one source at once; a run killed mid-way frees its source when the lease expires. The
watermark moves only when a run finished, so a failed run is retried from the last good one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recsys.catalog.harvest.config import SourceConfig
from recsys.db.models import HarvestSourceRow


@dataclass(frozen=True)
class SourceState:
    """What ``paperboy sources list`` shows for one source."""

    name: str
    watermark: str | None = None
    running_until: datetime | None = None
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_status: str | None = None
    last_result: dict[str, Any] | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "running_until": _iso(self.running_until),
            "last_started_at": _iso(self.last_started_at),
            "last_finished_at": _iso(self.last_finished_at),
            "last_status": self.last_status,
            "last_result": self.last_result,
            "last_error": self.last_error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def acquire(
    session: Session, name: str, kind: str, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take ``name``'s run lease for ``owner`` until ``now + lease``; False if another has it."""
    _ensure_row(session, name, kind)
    taken = session.execute(
        update(HarvestSourceRow)
        .where(HarvestSourceRow.name == name)
        .where(or_(HarvestSourceRow.lease_until.is_(None), HarvestSourceRow.lease_until < now))
        .values(lease_owner=owner, lease_until=now + lease, last_started_at=now, kind=kind)
    )
    return _rowcount(taken) == 1


def renew(session: Session, name: str, owner: str, until: datetime) -> bool:
    """Extend the lease while a long run makes progress; False if it was lost."""
    renewed = session.execute(
        update(HarvestSourceRow)
        .where(HarvestSourceRow.name == name, HarvestSourceRow.lease_owner == owner)
        .values(lease_until=until)
    )
    return _rowcount(renewed) == 1


def finish(
    session: Session,
    name: str,
    owner: str,
    now: datetime,
    *,
    result: dict[str, Any],
    watermark: str | None = None,
    error: str | None = None,
) -> None:
    """Record a run's end and free the lease; the watermark moves only on success."""
    values: dict[str, Any] = {
        "lease_owner": None,
        "lease_until": None,
        "last_finished_at": now,
        "last_status": "failed" if error else "ok",
        "last_result": result,
        "last_error": error,
    }
    if error is None and watermark is not None:
        values["watermark"] = watermark
    session.execute(
        update(HarvestSourceRow)
        .where(HarvestSourceRow.name == name, HarvestSourceRow.lease_owner == owner)
        .values(**values)
    )


def watermark(session: Session, name: str) -> str | None:
    return session.scalar(select(HarvestSourceRow.watermark).where(HarvestSourceRow.name == name))


def states(session: Session) -> dict[str, SourceState]:
    """Every recorded source's state by name (sources never run have none)."""
    return {row.name: _state(row) for row in session.scalars(select(HarvestSourceRow))}


def describe(session: Session, sources: Sequence[SourceConfig]) -> list[dict[str, Any]]:
    """Each configured source's settings with its ``state`` (``paperboy sources list``)."""
    known = states(session)
    return [
        {**source.model_dump(), "state": known.get(source.name, SourceState(source.name)).as_dict()}
        for source in sources
    ]


def _state(row: HarvestSourceRow) -> SourceState:
    return SourceState(
        name=row.name,
        watermark=row.watermark,
        running_until=row.lease_until,
        last_started_at=row.last_started_at,
        last_finished_at=row.last_finished_at,
        last_status=row.last_status,
        last_result=row.last_result,
        last_error=row.last_error,
    )


def _ensure_row(session: Session, name: str, kind: str) -> None:
    if session.get(HarvestSourceRow, name) is not None:
        return
    try:
        with session.begin_nested():  # two first runs may insert at once; one wins
            session.add(HarvestSourceRow(name=name, kind=kind))
    except IntegrityError:
        pass


def _rowcount(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
