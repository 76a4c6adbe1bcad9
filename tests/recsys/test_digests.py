from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from recsys.db.models import DigestRow, UserRow
from recsys.db.session import Database
from recsys.digests import claim, next_send_time, period_of, plan_due
from recsys.subscribers import create_user
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
