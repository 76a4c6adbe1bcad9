"""End to end through a real worker: plan, score and send digests for 200 synthetic users."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from api.demo import load_world
from api.digest_run import wait_until_final
from recsys.db.models import DigestItemRow, DigestRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.training.nightly import train
from workers.embedded import Embedded

N_USERS = 200


def _outbox_recipients(outbox: Path) -> list[str]:
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(outbox.glob("*.eml"))
    ]
    return [str(m["To"].addresses[0].addr_spec) for m in messages]


def _run_round(db: Database, runtime: Embedded, since: datetime, total: int) -> dict[str, int]:
    assert runtime.celery is not None
    runtime.celery.send_task("paperboy.plan")
    counts = wait_until_final(db, since, total, runtime.alive, 240, lambda *_: None)
    return dict(counts)


def test_every_user_gets_exactly_one_digest_and_replanning_sends_nothing(
    db: Database, settings: Settings, runtime: Embedded
) -> None:
    now = datetime.now(UTC)
    world = generate_world(N_USERS, 600, seed=7, now=now)
    with db.session() as s:
        user_ids = load_world(s, world, now)
        train(s, settings, now)

    counts = _run_round(db, runtime, now, N_USERS)

    assert counts == {"sent": N_USERS}
    recipients = _outbox_recipients(settings.outbox_dir)
    assert sorted(recipients) == sorted(world.user_emails)
    with db.session() as s:
        per_user = dict(
            s.execute(select(DigestRow.user_id, func.count()).group_by(DigestRow.user_id)).all()
        )
        assert per_user == {uid: 1 for uid in user_ids}
        n_items = s.scalar(select(func.count()).select_from(DigestItemRow))
        assert n_items == N_USERS * 10  # the default digest size, every user filled it

    # Make everyone due again inside the same period: the unique key lets nothing through.
    with db.session() as s:
        s.execute(UserRow.__table__.update().values(next_digest_at=now))
    again = datetime.now(UTC)
    _run_round(db, runtime, again, N_USERS)
    assert len(_outbox_recipients(settings.outbox_dir)) == N_USERS
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DigestRow)) == N_USERS
