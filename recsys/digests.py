"""The digest outbox: planning, conditional claims and state changes.

A digest row moves ``planned -> ranked -> sending -> sent | failed | skipped | unknown``.
Every move is a conditional ``UPDATE ... WHERE status = <expected>``: when it changes no
row, another worker got there first and this one does nothing. The unique
``(user_id, period)`` key makes a second digest for the same period impossible.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recsys.db.models import DigestRow, UserRow
from recsys.schedule import (
    Frequency,
    Schedule,
    SchedulePolicy,
    covers_from,
    next_send_at,
    parse_frequency,
)
from recsys.schedule import period_of as schedule_period

log = logging.getLogger(__name__)

STATUSES = ("planned", "ranked", "sending", "sent", "failed", "skipped", "unknown")
FINAL_STATUSES = frozenset({"sent", "failed", "skipped", "unknown"})
# A digest in one of these has (or will have) reached the user: the next one starts after it.
_DELIVERING = ("ranked", "sending", "sent", "unknown")
PLAN_BATCH = 10_000
INSERT_SLICE = 1000


def schedule_of(user: UserRow) -> Schedule:
    """The user's schedule; an unknown stored frequency is planned as daily, with a warning."""
    try:
        frequency = parse_frequency(user.frequency)
    except ValueError as exc:
        # Planning must go on for everyone else; the API validates frequencies on the way in.
        log.warning("user %s: %s; planning as daily", user.id, exc)
        frequency = Frequency.DAILY
    return Schedule(user.timezone, user.send_hour, frequency)


def period_of(timezone: str, now: datetime, frequency: str = "daily") -> str:
    """The period a digest planned at ``now`` belongs to (see :func:`recsys.schedule.period_of`)."""
    return schedule_period(Schedule(timezone, 0, parse_frequency(frequency)), now)


def next_send_time(
    timezone: str, send_hour: int, now: datetime, frequency: str = "daily"
) -> datetime:
    """The next send hour in the user's zone after today's period, without jitter."""
    schedule = Schedule(timezone, send_hour, parse_frequency(frequency))
    return next_send_at(schedule, now, user_id=0).astimezone(now.tzinfo)


def due_clause(now: datetime) -> ColumnElement[bool]:
    """Which users are due at ``now``: the one definition the planner and its watchers share."""
    return (UserRow.status == "active") & (UserRow.next_digest_at <= now)


def count_due(session: Session, now: datetime) -> int:
    """How many users are due a digest at ``now``."""
    return int(
        session.scalar(select(func.count()).select_from(UserRow).where(due_clause(now))) or 0
    )


def plan_due(
    session: Session,
    now: datetime,
    policy: SchedulePolicy | None = None,
    limit: int = PLAN_BATCH,
) -> list[int]:
    """Create one ``planned`` digest for up to ``limit`` due users; return the new digest ids.

    Each digest records the start of its paper window (``covers_from``): the user's previous
    digest, capped, so one catch-up digest covers a gap. Users are advanced to their next send
    time in the same transaction, so a crash either plans and advances a user, or neither.
    Call again until it returns fewer than ``limit`` ids to drain a large backlog.
    """
    policy = policy or SchedulePolicy()
    due = _due_users(session, now, limit)
    if not due:
        return []
    last = _last_digest_at(session, [u.id for u in due])
    schedules = {u.id: schedule_of(u) for u in due}
    rows = [
        {
            "user_id": u.id,
            "period": schedule_period(schedules[u.id], now),
            "status": "planned",
            "attempts": 0,
            "covers_from": covers_from(now, last.get(u.id), policy),
            "created_at": now,
            "updated_at": now,
        }
        for u in due
    ]
    ids = _insert_ignoring_duplicates(session, rows)
    advance = [
        {"id": u.id, "next_digest_at": _next(schedules[u.id], now, u.id, policy)} for u in due
    ]
    session.execute(update(UserRow), advance)  # ORM bulk UPDATE by primary key
    return ids


def _next(schedule: Schedule, now: datetime, user_id: int, policy: SchedulePolicy) -> datetime:
    return next_send_at(schedule, now, user_id=user_id, jitter_s=policy.jitter_s)


def _due_users(session: Session, now: datetime, limit: int) -> Sequence[UserRow]:
    query = (
        select(UserRow)
        .where(due_clause(now))
        .order_by(UserRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # two planners never plan the same user
    )
    return session.scalars(query).all()


def _last_digest_at(session: Session, user_ids: list[int]) -> dict[int, datetime]:
    """When each user's latest delivered (or delivering) digest was planned."""
    rows = session.execute(
        select(DigestRow.user_id, func.max(DigestRow.created_at))
        .where(DigestRow.user_id.in_(user_ids), DigestRow.status.in_(_DELIVERING))
        .group_by(DigestRow.user_id)
    ).all()
    return {uid: at for uid, at in rows if at is not None}


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, object]]) -> list[int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the unique key decides, not us."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ids: list[int] = []
    # One multi-row VALUES per slice: PostgreSQL takes at most 65,535 parameters a statement.
    for start in range(0, len(rows), INSERT_SLICE):
        stmt = (
            insert(DigestRow)
            .values(rows[start : start + INSERT_SLICE])
            .on_conflict_do_nothing(index_elements=["user_id", "period"])
            .returning(DigestRow.id)
        )
        ids.extend(session.scalars(stmt).all())
    return sorted(ids)


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


def claim_many(
    session: Session,
    digest_ids: Sequence[int],
    expected: str,
    new: str,
    now: datetime,
    **values: object,
) -> list[int]:
    """Move every digest in ``digest_ids`` still at ``expected`` to ``new``; return those moved.

    One ``UPDATE ... RETURNING`` for a whole batch: the ids missing from the answer were
    taken by someone else, exactly as a failed :func:`claim`.
    """
    if not digest_ids:
        return []
    stmt = (
        update(DigestRow)
        .where(DigestRow.id.in_(list(digest_ids)), DigestRow.status == expected)
        .values(status=new, updated_at=now, **values)
        .returning(DigestRow.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt).all())


def stale(session: Session, status: str, before: datetime, limit: int) -> list[int]:
    """Ids of digests that have sat in ``status`` since before ``before`` (oldest first)."""
    query = (
        select(DigestRow.id)
        .where(DigestRow.status == status, DigestRow.updated_at < before)
        .order_by(DigestRow.updated_at, DigestRow.id)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def status_counts(session: Session, digest_ids: Sequence[int] | None = None) -> Counter[str]:
    """How many digests are in each status (all, or only ``digest_ids``)."""
    query = select(DigestRow.status, func.count()).group_by(DigestRow.status)
    if digest_ids is not None:
        query = query.where(DigestRow.id.in_(digest_ids))
    return Counter({status: int(n) for status, n in session.execute(query).all()})
