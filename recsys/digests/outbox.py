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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Row,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from recsys.db.bulk import among, is_postgresql
from recsys.db.models import DigestRow, UserRow
from recsys.digests.schedule import (
    Frequency,
    Schedule,
    SchedulePolicy,
    covers_from,
    jitter_seconds,
    next_send_at,
    parse_frequency,
)
from recsys.digests.schedule import period_of as schedule_period

log = logging.getLogger(__name__)

STATUSES = ("planned", "ranked", "sending", "sent", "failed", "skipped", "unknown")
FINAL_STATUSES = frozenset({"sent", "failed", "skipped", "unknown"})
# A digest in one of these has (or will have) reached the user: the next one starts after it.
_DELIVERING = ("ranked", "sending", "sent", "unknown")
PLAN_BATCH = 10_000
INSERT_SLICE = 1000


class ScheduleFields(Protocol):
    """What planning reads of a user: a ``UserRow`` or a row of just these columns."""

    @property
    def id(self) -> int: ...
    @property
    def timezone(self) -> str: ...
    @property
    def send_hour(self) -> int: ...
    @property
    def frequency(self) -> str: ...


def schedule_of(user: ScheduleFields) -> Schedule:
    """The user's schedule; an unknown stored frequency is planned as daily, with a warning."""
    try:
        frequency = parse_frequency(user.frequency)
    except ValueError as exc:
        # Planning must go on for everyone else; the API validates frequencies on the way in.
        log.warning("user %s: %s; planning as daily", user.id, exc, extra={"user_id": user.id})
        frequency = Frequency.DAILY
    return Schedule(user.timezone, user.send_hour, frequency)


def period_of(timezone: str, now: datetime, frequency: str = "daily") -> str:
    """The period a digest planned at ``now`` belongs to (see
    :func:`recsys.digests.schedule.period_of`)."""
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

    Parameters
    ----------
    session : Session
        The transaction to plan in; the caller commits.
    now : datetime
        The planning instant (aware); users with ``next_digest_at <= now`` are due.
    policy : SchedulePolicy, optional
        Jitter, first look-back and catch-up cap; the defaults when omitted.
    limit : int, default PLAN_BATCH
        At most this many users are planned by one call.

    Returns
    -------
    list of int
        Ids of the digests created, ascending; a user who already has a digest for the
        period gets none (the unique key decides).
    """
    policy = policy or SchedulePolicy()
    due = _due_users(session, now, limit)
    if not due:
        return []
    user_ids = [u.id for u in due]
    last = _last_digest_at(session, user_ids)
    slots = _slots(due, now)
    plan = _Plan(user_ids=user_ids, now=now)
    for user in due:
        slot = slots[_schedule_key(user)]
        plan.periods.append(slot.period)
        plan.covers_from.append(covers_from(now, last.get(user.id), policy))
        plan.next_at.append(slot.at + timedelta(seconds=_jitter(user.id, slot, policy)))
    ids = _insert_digests(session, plan)
    _advance_users(session, plan)
    return ids


class _Slot(NamedTuple):
    """What planning at ``now`` means for one schedule: its period and next send hour."""

    period: str
    at: datetime  # the next send time, in UTC, before the per-user jitter
    day: date  # the local date of ``at``, which the jitter is hashed with


@dataclass
class _Plan:
    """One batch's new digests and the users' next send times, column by column."""

    user_ids: list[int]
    now: datetime
    periods: list[str] = field(default_factory=list)
    covers_from: list[datetime] = field(default_factory=list)
    next_at: list[datetime] = field(default_factory=list)


def _schedule_key(user: ScheduleFields) -> tuple[str, int, str]:
    return (user.timezone, user.send_hour, user.frequency)


def _slots(users: Sequence[ScheduleFields], now: datetime) -> dict[tuple[str, int, str], _Slot]:
    """The slot of each distinct schedule: a handful for any number of users.

    Time-zone arithmetic is the costly part of planning in Python; users share a few
    (zone, hour, frequency) schedules, so it is done once per schedule, not per user.
    """
    slots: dict[tuple[str, int, str], _Slot] = {}
    for user in users:
        key = _schedule_key(user)
        if key not in slots:
            schedule = schedule_of(user)
            at = next_send_at(schedule, now, user_id=0)  # jitter 0: added per user below
            day = at.astimezone(ZoneInfo(schedule.timezone)).date()
            slots[key] = _Slot(schedule_period(schedule, now), at, day)
    return slots


def _jitter(user_id: int, slot: _Slot, policy: SchedulePolicy) -> int:
    # The same hash next_send_at adds, keyed by the slot's local date.
    return jitter_seconds(user_id, slot.day, policy.jitter_s)


def _due_users(session: Session, now: datetime, limit: int) -> Sequence[Row[int, str, int, str]]:
    # Only the columns planning reads: loading whole ORM objects cost more than the planning.
    query = (
        select(UserRow.id, UserRow.timezone, UserRow.send_hour, UserRow.frequency)
        .where(due_clause(now))
        .order_by(UserRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # two planners never plan the same user
    )
    return session.execute(query).all()


def _last_digest_at(session: Session, user_ids: list[int]) -> dict[int, datetime]:
    """When each user's latest delivered (or delivering) digest was planned."""
    rows = session.execute(
        select(DigestRow.user_id, func.max(DigestRow.created_at))
        .where(among(session, DigestRow.user_id, user_ids), DigestRow.status.in_(_DELIVERING))
        .group_by(DigestRow.user_id)
    ).all()
    return {uid: at for uid, at in rows if at is not None}


def _insert_digests(session: Session, plan: _Plan) -> list[int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the unique key decides, not us."""
    if is_postgresql(session):
        return _insert_digests_pg(session, plan)
    rows = [
        {
            "user_id": uid, "period": period, "status": "planned", "attempts": 0,
            "covers_from": start, "created_at": plan.now, "updated_at": plan.now,
        }
        for uid, period, start in zip(plan.user_ids, plan.periods, plan.covers_from, strict=True)
    ]  # fmt: skip
    ids: list[int] = []
    # One multi-row VALUES per slice keeps SQLite (the embedded mode) under its parameter cap.
    for start in range(0, len(rows), INSERT_SLICE):
        stmt = (
            sqlite.insert(DigestRow)
            .values(rows[start : start + INSERT_SLICE])
            .on_conflict_do_nothing(index_elements=["user_id", "period"])
            .returning(DigestRow.id)
        )
        ids.extend(session.scalars(stmt).all())
    return sorted(ids)


# Three array parameters, whatever the batch size: a multi-row VALUES of 10,000 rows spent
# most of planning compiling 70,000 bound parameters in SQLAlchemy.
_INSERT_PG = text(
    """
    INSERT INTO digests (user_id, period, status, attempts, covers_from, created_at, updated_at)
    SELECT v.user_id, v.period, 'planned', 0, v.covers_from, :now, :now
    FROM unnest(CAST(:user_ids AS bigint[]), CAST(:periods AS varchar[]),
                CAST(:covers_from AS timestamptz[])) AS v(user_id, period, covers_from)
    ON CONFLICT (user_id, period) DO NOTHING
    RETURNING id
    """
)

_ADVANCE_PG = text(
    """
    UPDATE users SET next_digest_at = v.next_at
    FROM unnest(CAST(:user_ids AS bigint[]), CAST(:next_at AS timestamptz[])) AS v(id, next_at)
    WHERE users.id = v.id
    """
)


def _insert_digests_pg(session: Session, plan: _Plan) -> list[int]:
    params = {
        "now": plan.now, "user_ids": plan.user_ids, "periods": plan.periods,
        "covers_from": plan.covers_from,
    }  # fmt: skip
    return sorted(session.scalars(_INSERT_PG, params).all())


def _advance_users(session: Session, plan: _Plan) -> None:
    if is_postgresql(session):
        session.execute(_ADVANCE_PG, {"user_ids": plan.user_ids, "next_at": plan.next_at})
        return
    advance = [
        {"id": uid, "next_digest_at": at}
        for uid, at in zip(plan.user_ids, plan.next_at, strict=True)
    ]
    session.execute(update(UserRow), advance)  # ORM bulk UPDATE by primary key


def claim(
    session: Session, digest_id: int, expected: str, new: str, now: datetime, **values: object
) -> bool:
    """Move one digest from ``expected`` to ``new``; False when someone else moved it.

    A move ends the lease of whoever held the row in ``expected`` unless ``values`` sets a
    new one (``lease_until``): the next step's task takes its own when it starts.
    """
    stmt = (
        update(DigestRow)
        .where(DigestRow.id == digest_id, DigestRow.status == expected)
        .values(status=new, updated_at=now, **{"lease_until": None, **values})
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
    taken by someone else, exactly as a failed :func:`claim`. Leases end as in :func:`claim`.
    """
    if not digest_ids:
        return []
    stmt = (
        update(DigestRow)
        .where(among(session, DigestRow.id, digest_ids), DigestRow.status == expected)
        .values(status=new, updated_at=now, **{"lease_until": None, **values})
        .returning(DigestRow.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt).all())


def lease(
    session: Session, digest_ids: Sequence[int], status: str, until: datetime | None
) -> list[int]:
    """Hold the digests still in ``status`` until ``until`` (None releases them); return those.

    A task leases its rows when it starts and renews the lease while it works, so that the
    sweep can tell a row whose task died (lease past) from one still queued (no lease) and
    re-enqueue the first within a sweep interval instead of after the stale delay.
    """
    if not digest_ids:
        return []
    stmt = (
        update(DigestRow)
        .where(among(session, DigestRow.id, digest_ids), DigestRow.status == status)
        .values(lease_until=until)
        .returning(DigestRow.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt).all())


def fewest_attempts(session: Session, digest_ids: Sequence[int]) -> int:
    """The smallest delivery-attempt count among ``digest_ids`` (0 when none are found)."""
    query = select(func.min(DigestRow.attempts)).where(among(session, DigestRow.id, digest_ids))
    return int(session.scalar(query) or 0)


def abandoned(session: Session, status: str, now: datetime, limit: int) -> list[int]:
    """Ids of digests in ``status`` whose lease ran out before ``now``: their task is gone."""
    query = (
        select(DigestRow.id)
        .where(DigestRow.status == status, DigestRow.lease_until < now)
        .order_by(DigestRow.lease_until, DigestRow.id)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def stale(
    session: Session, status: str, before: datetime, limit: int, now: datetime | None = None
) -> list[int]:
    """Ids of digests that have sat in ``status`` since before ``before`` (oldest first);
    with ``now``, not those a task holds at ``now`` (a lease still running)."""
    query = (
        select(DigestRow.id)
        .where(DigestRow.status == status, DigestRow.updated_at < before)
        .order_by(DigestRow.updated_at, DigestRow.id)
        .limit(limit)
    )
    if now is not None:
        query = query.where(DigestRow.lease_until.is_(None) | (DigestRow.lease_until < now))
    return list(session.scalars(query).all())


def status_counts(session: Session, digest_ids: Sequence[int] | None = None) -> Counter[str]:
    """How many digests are in each status (all, or only ``digest_ids``)."""
    query = select(DigestRow.status, func.count()).group_by(DigestRow.status)
    if digest_ids is not None:
        query = query.where(DigestRow.id.in_(digest_ids))
    return Counter({status: int(n) for status, n in session.execute(query).all()})
