from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.db.models import DigestRow, UserRow
from recsys.db.session import Database
from recsys.digests.outbox import (
    abandoned,
    claim,
    claim_many,
    count_due,
    fewest_attempts,
    lease,
    next_send_time,
    period_of,
    plan_due,
    stale,
)
from recsys.digests.schedule import SchedulePolicy, jitter_seconds
from recsys.subscribers.accounts import create_user
from tests.conftest import NOW


def test_period_is_the_users_local_date() -> None:
    late_utc = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)
    assert period_of("UTC", late_utc) == "2026-11-21"
    assert period_of("Asia/Tokyo", late_utc) == "2026-11-22"
    assert period_of("America/Los_Angeles", late_utc) == "2026-11-21"


def test_next_send_time_is_tomorrow_at_the_local_send_hour() -> None:
    nxt = next_send_time("Europe/Berlin", 7, datetime(2026, 11, 21, 6, 0, tzinfo=UTC))
    assert nxt == datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 07:00 CET is 06:00 UTC


def test_it_plans_one_digest_per_due_user_and_advances_them(db: Database) -> None:
    with db.session() as s:
        alice = create_user(s, "alice@example.org", NOW).id
        create_user(s, "bob@example.org", NOW + timedelta(hours=1))  # not due yet
    with db.session() as s:
        ids = plan_due(s, NOW)
    with db.session() as s:
        digests = s.scalars(select(DigestRow)).all()
        assert [(d.id, d.user_id, d.period, d.status) for d in digests] == [
            (ids[0], alice, "2026-11-21", "planned")
        ]
        user = s.get(UserRow, alice)
        assert user is not None and user.next_digest_at == datetime(2026, 11, 22, 7, tzinfo=UTC)


def test_planning_the_same_period_again_creates_nothing(db: Database) -> None:
    with db.session() as s:
        uid = create_user(s, "alice@example.org", NOW).id
    with db.session() as s:
        assert len(plan_due(s, NOW)) == 1
    with db.session() as s:
        # Even if the user is due again within the same period, the unique key holds.
        user = s.get(UserRow, uid)
        assert user is not None
        user.next_digest_at = NOW
    with db.session() as s:
        assert plan_due(s, NOW + timedelta(minutes=5)) == []
    with db.session() as s:
        assert len(s.scalars(select(DigestRow)).all()) == 1


def test_paused_and_unsubscribed_users_are_not_planned(db: Database) -> None:
    with db.session() as s:
        create_user(s, "a@example.org", NOW).status = "unsubscribed"
        create_user(s, "b@example.org", NOW).status = "paused"
    with db.session() as s:
        assert plan_due(s, NOW) == []


def test_a_claim_succeeds_once(db: Database) -> None:
    with db.session() as s:
        create_user(s, "alice@example.org", NOW)
    with db.session() as s:
        (digest_id,) = plan_due(s, NOW)
    with db.session() as s:
        assert claim(s, digest_id, "planned", "ranked", NOW) is True
        assert claim(s, digest_id, "planned", "ranked", NOW) is False
    with db.session() as s:
        digest = s.get(DigestRow, digest_id)
        assert digest is not None and digest.status == "ranked"


# Schedules and catch-up (issue 4) ----------------------------------------------------------


def _user(s: Session, email: str, **columns: object) -> int:
    user = create_user(s, email, NOW)
    for name, value in columns.items():
        setattr(user, name, value)
    return user.id


def _digests(db: Database) -> list[DigestRow]:
    with db.session() as s:
        return list(s.scalars(select(DigestRow).order_by(DigestRow.id)))


def test_each_frequency_is_advanced_to_its_own_next_slot(db: Database) -> None:
    with db.session() as s:
        daily = _user(s, "daily@example.org")
        weekdays = _user(s, "weekdays@example.org", frequency="weekdays")
        weekly = _user(s, "weekly@example.org", frequency="weekly", timezone="Europe/Berlin")
    with db.session() as s:
        plan_due(s, NOW)  # a Saturday
    with db.session() as s:
        nxt = {u.id: u.next_digest_at for u in s.scalars(select(UserRow))}
    assert nxt == {
        daily: datetime(2026, 11, 22, 7, tzinfo=UTC),
        weekdays: datetime(2026, 11, 23, 7, tzinfo=UTC),
        weekly: datetime(2026, 11, 23, 6, tzinfo=UTC),  # Monday 07:00 in Berlin
    }
    assert sorted(d.period for d in _digests(db)) == ["2026-11-21", "2026-11-21", "2026-W47"]


def test_the_planner_adds_the_hashed_jitter(db: Database) -> None:
    with db.session() as s:
        uid = _user(s, "alice@example.org")
    with db.session() as s:
        plan_due(s, NOW, SchedulePolicy(jitter_s=600))
    with db.session() as s:
        user = s.get(UserRow, uid)
        assert user is not None and user.next_digest_at is not None
    jitter = jitter_seconds(uid, date(2026, 11, 22), 600)
    assert user.next_digest_at == datetime(2026, 11, 22, 7, tzinfo=UTC) + timedelta(seconds=jitter)


def test_users_sharing_a_schedule_each_get_their_own_jitter_and_zone(db: Database) -> None:
    with db.session() as s:
        alice, bob = _user(s, "alice@example.org"), _user(s, "bob@example.org")
        kenji = _user(s, "kenji@example.org", timezone="Asia/Tokyo")
    with db.session() as s:
        plan_due(s, NOW, SchedulePolicy(jitter_s=3600))
    with db.session() as s:
        nxt = {u.id: u.next_digest_at for u in s.scalars(select(UserRow))}
    utc_slot, tokyo_slot = (
        datetime(2026, 11, 22, 7, tzinfo=UTC),
        datetime(2026, 11, 21, 22, tzinfo=UTC),
    )

    def jittered(uid: int, slot: datetime) -> datetime:
        return slot + timedelta(seconds=jitter_seconds(uid, date(2026, 11, 22), 3600))

    assert nxt == {
        alice: jittered(alice, utc_slot),
        bob: jittered(bob, utc_slot),
        kenji: jittered(kenji, tokyo_slot),  # 07:00 on the 22nd in Tokyo
    }
    assert nxt[alice] != nxt[bob]
    assert [d.period for d in _digests(db)] == ["2026-11-21"] * 3


def test_a_first_digest_covers_the_first_lookback(db: Database) -> None:
    with db.session() as s:
        _user(s, "alice@example.org")
    with db.session() as s:
        plan_due(s, NOW, SchedulePolicy(first_lookback=timedelta(days=3)))
    assert [d.covers_from for d in _digests(db)] == [NOW - timedelta(days=3)]


def test_a_user_back_after_a_pause_gets_one_capped_catch_up(db: Database) -> None:
    back = NOW + timedelta(days=30)
    policy = SchedulePolicy(catch_up_cap=timedelta(days=14))
    with db.session() as s:
        uid = _user(s, "alice@example.org")
    with db.session() as s:
        (first,) = plan_due(s, NOW, policy)
        assert claim(s, first, "planned", "sent", NOW)
        user = s.get(UserRow, uid)
        assert user is not None
        user.status = "paused"  # away for a month; beat keeps running
    with db.session() as s:
        assert plan_due(s, NOW + timedelta(days=10), policy) == []
        user = s.get(UserRow, uid)
        assert user is not None
        user.status = "active"
    with db.session() as s:
        catch_up = plan_due(s, back, policy)
        assert plan_due(s, back + timedelta(minutes=5), policy) == []  # one, not a burst
    [row] = [d for d in _digests(db) if d.id in catch_up]
    assert row.covers_from == back - timedelta(days=14)
    with db.session() as s:
        user = s.get(UserRow, uid)
        assert user is not None and user.next_digest_at == datetime(2026, 12, 22, 7, tzinfo=UTC)


def test_the_next_digest_covers_since_the_last_delivered_one(db: Database) -> None:
    with db.session() as s:
        _user(s, "alice@example.org")
    with db.session() as s:
        (first,) = plan_due(s, NOW)
        claim(s, first, "planned", "sent", NOW)
    tomorrow = NOW + timedelta(days=1)
    with db.session() as s:
        (second,) = plan_due(s, tomorrow)
    assert {d.id: d.covers_from for d in _digests(db)}[second] == NOW


def test_a_skipped_digest_does_not_move_the_window(db: Database) -> None:
    # Nothing cleared the bar yesterday: today's digest still covers yesterday's papers.
    with db.session() as s:
        _user(s, "alice@example.org")
    with db.session() as s:
        (first,) = plan_due(s, NOW)
        claim(s, first, "planned", "skipped", NOW)
    tomorrow = NOW + timedelta(days=1)
    with db.session() as s:
        (second,) = plan_due(s, tomorrow)
    assert {d.id: d.covers_from for d in _digests(db)}[second] == tomorrow - timedelta(days=7)


def test_planning_goes_in_batches_and_count_due_says_what_is_left(db: Database) -> None:
    with db.session() as s:
        for i in range(5):
            _user(s, f"user{i}@example.org")
    with db.session() as s:
        assert len(plan_due(s, NOW, limit=3)) == 3
        assert count_due(s, NOW) == 2
        assert len(plan_due(s, NOW, limit=3)) == 2
        assert count_due(s, NOW) == 0


def test_claim_many_moves_only_the_rows_still_expected(db: Database) -> None:
    with db.session() as s:
        for i in range(3):
            _user(s, f"user{i}@example.org")
    with db.session() as s:
        ids = plan_due(s, NOW)
        assert claim(s, ids[0], "planned", "ranked", NOW)
        assert claim_many(s, ids, "planned", "ranked", NOW) == ids[1:]
        assert claim_many(s, ids, "planned", "ranked", NOW) == []


def test_stale_lists_rows_untouched_since_before(db: Database) -> None:
    with db.session() as s:
        _user(s, "alice@example.org")
    with db.session() as s:
        ids = plan_due(s, NOW)
        assert stale(s, "planned", NOW, 10) == []
        assert stale(s, "planned", NOW + timedelta(seconds=1), 10) == ids


# Leases (issue 11) ---------------------------------------------------------------------------


def test_a_lease_holds_only_rows_still_in_the_status_and_runs_out_at_its_time(
    db: Database,
) -> None:
    with db.session() as s:
        for i in range(2):
            _user(s, f"user{i}@example.org")
    until = NOW + timedelta(seconds=60)
    with db.session() as s:
        first, second = plan_due(s, NOW)
        assert claim(s, second, "planned", "ranked", NOW)
        assert lease(s, [first, second], "planned", until) == [first]
    with db.session() as s:
        assert abandoned(s, "planned", until, 10) == []  # held up to the instant
        assert abandoned(s, "planned", until + timedelta(seconds=1), 10) == [first]
        assert abandoned(s, "ranked", until + timedelta(seconds=1), 10) == []  # never leased


def test_a_move_ends_the_lease_unless_it_sets_a_new_one(db: Database) -> None:
    with db.session() as s:
        _user(s, "alice@example.org")
    later = NOW + timedelta(hours=1)
    with db.session() as s:
        (digest_id,) = plan_due(s, NOW)
        lease(s, [digest_id], "planned", NOW + timedelta(seconds=60))
        assert claim(s, digest_id, "planned", "ranked", NOW)
        assert abandoned(s, "ranked", later, 10) == []  # the ranked row waits in the queue
        assert claim_many(s, [digest_id], "ranked", "sending", NOW, lease_until=later)
        row = s.get(DigestRow, digest_id)
        assert row is not None and row.lease_until == later


def test_fewest_attempts_is_the_smallest_count_among_the_ids(db: Database) -> None:
    with db.session() as s:
        for name in ("a", "b", "c"):
            _user(s, f"{name}@example.org")
    with db.session() as s:
        first, second, third = plan_due(s, NOW)
        for digest_id, attempts in ((first, 3), (second, 1), (third, 0)):
            row = s.get(DigestRow, digest_id)
            assert row is not None
            row.attempts = attempts
    with db.session() as s:
        assert fewest_attempts(s, [first, second]) == 1
        assert fewest_attempts(s, [first]) == 3
        assert fewest_attempts(s, [first, second, third]) == 0
        assert fewest_attempts(s, []) == 0
