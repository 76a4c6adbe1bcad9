"""When each subscriber gets a digest: pure functions of a schedule and ``now``.

A schedule is a time zone, a local send hour and a frequency. Send times are computed on the
user's local calendar (so 07:00 stays 07:00 across daylight-saving changes) and stored in UTC
in ``users.next_digest_at``. A small jitter, hashed from the user id and the date, spreads a
popular send hour over several planning runs without making tests depend on a random seed.

Nothing here reads a clock or the database; ``now`` is always passed in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"  # Monday to Friday
    WEEKLY = "weekly"  # on WEEKLY_DAY


WEEKLY_DAY = 0  # Monday: the start of the working week, when a weekly round-up is most useful
_SATURDAY = 5


@dataclass(frozen=True)
class Schedule:
    """One user's schedule.

    Parameters
    ----------
    timezone : str
        IANA zone name, e.g. ``"Europe/Berlin"``.
    send_hour : int
        Local hour, 0-23, at which the digest is due.
    frequency : Frequency
        Daily, weekdays or weekly.
    """

    timezone: str
    send_hour: int
    frequency: Frequency

    def __post_init__(self) -> None:
        if not 0 <= self.send_hour <= 23:
            raise ValueError(f"send_hour must be 0-23, got {self.send_hour}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc


@dataclass(frozen=True)
class SchedulePolicy:
    """Operator-wide knobs of planning.

    Parameters
    ----------
    jitter_s : int
        Each send time is moved later by a hashed 0 to ``jitter_s`` seconds.
    first_lookback : timedelta
        A user's first digest covers papers from this far back.
    catch_up_cap : timedelta
        A user back after a gap gets one digest covering at most this much time.
    """

    jitter_s: int = 0
    first_lookback: timedelta = timedelta(days=7)
    catch_up_cap: timedelta = timedelta(days=14)


def parse_frequency(value: str) -> Frequency:
    """The :class:`Frequency` named ``value``; ``ValueError`` lists the choices otherwise."""
    try:
        return Frequency(value)
    except ValueError:
        choices = ", ".join(f.value for f in Frequency)
        raise ValueError(f"frequency {value!r} is not one of {choices}") from None


def period_of(schedule: Schedule, now: datetime) -> str:
    """The period a digest planned at ``now`` belongs to; one digest per user and period.

    Daily and weekday digests are keyed by the local date (``2026-11-21``), weekly ones by
    the ISO week (``2026-W47``), so a weekly user made due twice in a week still gets one.
    """
    local = now.astimezone(ZoneInfo(schedule.timezone)).date()
    if schedule.frequency is Frequency.WEEKLY:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.isoformat()


def next_send_at(schedule: Schedule, now: datetime, *, user_id: int, jitter_s: int = 0) -> datetime:
    """The next send time after a digest planned at ``now``, in UTC.

    It is the send hour on the first allowed local date *after* today's, so however late a
    planning run is (or however long the user was away), the next digest is one slot ahead
    of ``now``, never a backlog of missed slots.
    """
    zone = ZoneInfo(schedule.timezone)
    day = now.astimezone(zone).date() + timedelta(days=1)
    while not _allowed(schedule.frequency, day):
        day += timedelta(days=1)
    # Built on the local calendar: the UTC offset of *that* day applies (DST-safe). An hour
    # skipped by a spring-forward change resolves to the same wall time after the change.
    slot = datetime(day.year, day.month, day.day, schedule.send_hour, tzinfo=zone)
    return slot.astimezone(UTC) + timedelta(seconds=jitter_seconds(user_id, day, jitter_s))


def _allowed(frequency: Frequency, day: date) -> bool:
    if frequency is Frequency.WEEKDAYS:
        return day.weekday() < _SATURDAY
    if frequency is Frequency.WEEKLY:
        return day.weekday() == WEEKLY_DAY
    return True


def jitter_seconds(user_id: int, day: date, jitter_s: int) -> int:
    """A stable pseudo-random 0 <= j < ``jitter_s`` for this user and date.

    Hashed rather than drawn so a re-run plans the same times and tests need no seed; it
    changes with the date so nobody is always last.
    """
    if jitter_s <= 0:
        return 0
    digest = hashlib.blake2b(f"{user_id}:{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % jitter_s


def covers_from(now: datetime, last_digest_at: datetime | None, policy: SchedulePolicy) -> datetime:
    """Start of the paper window of a digest planned at ``now``.

    The window starts at the user's previous digest, so a user back after a pause or an
    outage gets one catch-up digest over the whole gap; it is capped at
    ``policy.catch_up_cap`` so a year away does not rank a year of papers. A first digest
    looks back ``policy.first_lookback``.
    """
    if last_digest_at is None:
        return now - policy.first_lookback
    return min(max(last_digest_at, now - policy.catch_up_cap), now)
