"""The digest outbox: planning, conditional claims and state changes.

A digest row moves ``planned -> ranked -> sending -> sent | failed | skipped | unknown``.
Every move is a conditional ``UPDATE ... WHERE status = <expected>``: when it changes no
row, another worker got there first and this one does nothing. The unique
``(user_id, period)`` key makes a second digest for the same period impossible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recsys.db.models import DigestRow, UserRow

STATUSES = ("planned", "ranked", "sending", "sent", "failed", "skipped", "unknown")
FINAL_STATUSES = frozenset({"sent", "failed", "skipped", "unknown"})


def period_of(timezone: str, now: datetime) -> str:
    """The daily period a digest sent at ``now`` belongs to: the user's local date."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def next_send_time(timezone: str, send_hour: int, now: datetime) -> datetime:
    """The next ``send_hour`` o'clock in the user's zone strictly after today's period."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    tomorrow = (local + timedelta(days=1)).date()
    nxt = datetime(tomorrow.year, tomorrow.month, tomorrow.day, send_hour, tzinfo=zone)
    return nxt.astimezone(now.tzinfo)


def plan_due(session: Session, now: datetime, limit: int = 10_000) -> list[int]:
    """Create one ``planned`` digest for every active user due at ``now``; return their ids.

    Users are advanced to their next send time in the same transaction, so a crash either
    plans a user and advances them, or does neither.
    """
    due = _due_users(session, now, limit)
    if not due:
        return []
    rows = [
        {
            "user_id": u.id,
            "period": period_of(u.timezone, now),
            "status": "planned",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for u in due
    ]
    ids = _insert_ignoring_duplicates(session, rows)
    for user in due:
        user.next_digest_at = next_send_time(user.timezone, user.send_hour, now)
    session.flush()
    return ids


def _due_users(session: Session, now: datetime, limit: int) -> Sequence[UserRow]:
    query = (
        select(UserRow)
        .where(UserRow.status == "active", UserRow.next_digest_at <= now)
        .order_by(UserRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # two planners never plan the same user
    )
    return session.scalars(query).all()


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, object]]) -> list[int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the unique key decides, not us."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(DigestRow)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["user_id", "period"])
        .returning(DigestRow.id)
    )
    return sorted(session.scalars(stmt).all())


def claim(
    session: Session, digest_id: int, expected: str, new: str, now: datetime, **values: object
) -> bool:
    """Move one digest from ``expected`` to ``new``; False when someone else moved it."""
    stmt = (
        update(DigestRow)
        .where(DigestRow.id == digest_id, DigestRow.status == expected)
        .values(status=new, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def status_counts(session: Session, digest_ids: Sequence[int] | None = None) -> Counter[str]:
    """How many digests are in each status (all, or only ``digest_ids``)."""
    query = select(DigestRow.status, func.count()).group_by(DigestRow.status)
    if digest_ids is not None:
        query = query.where(DigestRow.id.in_(digest_ids))
    return Counter({status: int(n) for status, n in session.execute(query).all()})
