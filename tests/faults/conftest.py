"""Fault tests: the whole delivery path with real parts, and faults injected at the edges.

Every test here runs a real Celery worker and beat (child processes), a real ``redis-server``
of its own (so it can be restarted without touching anyone else's), the real database, the
API serving the Event Webhook over real HTTP, and the SendGrid stand-in posting signed events
to it. Timings are shrunk (sweep every second, rows stale and leases out after four) so
recovery happens in seconds; the logic is the production logic. ``test_recovery`` puts the
recovery settings back to their defaults to time recovery as an installation sees it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import func, select

from api.app import create_app
from api.demo import load_world
from recsys.db.models import DigestRow, ProviderEventRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.testing.processes import RedisServer, free_port
from recsys.testing.sendgrid import SendGridStandIn
from recsys.training.nightly import train
from workers.embedded import Embedded

N_USERS = 100
RUN_TIMEOUT_S = 120.0


class ApiServer:
    """The real API (for the webhook) served by uvicorn in a thread, on a free port."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=free_port(), log_level="warning"
        )
        self.url = f"http://127.0.0.1:{config.port}"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class Rig:
    """Everything a fault test drives and inspects."""

    db: Database
    settings: Settings
    standin: SendGridStandIn
    redis: RedisServer
    user_ids: list[int]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @contextmanager
    def workers(self) -> Iterator[Embedded]:
        """A worker and beat; the first plan is enqueued at once rather than at beat's tick."""
        with Embedded(self.settings, concurrency=2, beat=True) as runtime:
            assert runtime.celery is not None
            runtime.celery.send_task("paperboy.plan")
            yield runtime

    def sent(self) -> int:
        with self.db.session() as s:
            query = select(func.count()).where(DigestRow.status == "sent")
            return int(s.scalar(query.select_from(DigestRow)) or 0)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.statuses()}")
            time.sleep(0.2)

    def statuses(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(DigestRow.status, func.count()).group_by(DigestRow.status))
            return {status: int(n) for status, n in rows.all()}

    def settled(self) -> bool:
        """Every user's digest is final and the stand-in has posted all its events."""
        statuses = self.statuses()
        done = statuses.get("sent", 0) + statuses.get("failed", 0) + statuses.get("skipped", 0)
        return done == len(self.user_ids) and self.standin.pending_events() == 0

    def wait_settled(self) -> None:
        self.wait_until(self.settled, "every digest to be final", RUN_TIMEOUT_S)


def assert_exactly_once(rig: Rig) -> None:
    """Every due user has exactly one accepted digest, none twice, and the database agrees
    with what the stand-in received (which digest, under which message id)."""
    with rig.db.session() as s:
        rows = s.execute(select(DigestRow.id, DigestRow.user_id, DigestRow.status)).all()
        provider_ids = dict(s.execute(select(DigestRow.id, DigestRow.provider_id)).all())
        processed = Counter(
            s.scalars(
                select(ProviderEventRow.digest_id).where(ProviderEventRow.kind == "processed")
            ).all()
        )
    assert sorted(uid for _, uid, _ in rows) == sorted(rig.user_ids), "one digest per user"
    assert {status for *_, status in rows} == {"sent"}
    digest_ids = sorted(d for d, *_ in rows)
    assert rig.standin.digest_counts() == Counter(digest_ids), "each accepted exactly once"
    assert processed == Counter(digest_ids), "one processed event each, de-duplicated"
    carried_by = {
        int(p["custom_args"]["digest_id"]): a.message_id
        for a in rig.standin.accepted
        for p in a.body["personalizations"]
    }
    for digest_id in digest_ids:
        # The 202's X-Message-Id, or the event's sg_message_id "<X-Message-Id>.<n>" when the
        # reply was lost and the webhook resolved the digest.
        assert str(provider_ids[digest_id]).split(".")[0] == carried_by[digest_id]


@pytest.fixture()
def make_rig(db: Database, settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Build the rig: ``make_rig(**standin_options, **settings_overrides)``."""
    cleanups: list[Callable[[], None]] = []

    def make(settings_update: dict[str, object] | None = None, **standin_options: object) -> Rig:
        redis_server = RedisServer(tmp_path)
        redis_server.start()
        cleanups.append(redis_server.stop)
        standin = SendGridStandIn(delivered_delay_s=3.0, **standin_options)  # type: ignore[arg-type]
        configured = settings.model_copy(
            update={
                "redis_url": redis_server.url,
                "email_backend": "sendgrid",
                "sendgrid_api_key": standin.api_key,
                "sendgrid_timeout_s": 1.0,
                "sendgrid_webhook_public_key": standin.public_key,
                "schedule_jitter_s": 0,
                "score_chunk_size": 20,
                "plan_interval_s": 2.0,
                "sweep_interval_s": 1.0,
                "sweep_stale_after_s": 4.0,
                "reconcile_grace_s": 2.0,
                "digest_lease_s": 4.0,
                **(settings_update or {}),
            }
        )
        api = ApiServer(configured)
        api.start()
        cleanups.append(api.stop)
        standin.webhook_url = f"{api.url}/webhooks/sendgrid"
        standin.start()
        cleanups.append(standin.stop)
        configured = configured.model_copy(update={"sendgrid_api_host": standin.url})
        user_ids = _world(db, configured)
        return Rig(db, configured, standin, redis_server, user_ids)

    yield make
    for cleanup in reversed(cleanups):
        cleanup()


def _world(db: Database, settings: Settings) -> list[int]:
    now = datetime.now(UTC)
    world = generate_world(N_USERS, 300, seed=11, now=now)
    with db.session() as s:
        user_ids = load_world(s, world, now)
        train(s, settings, now)
    return user_ids


def attempt_outcomes(rig: Rig) -> Counter[str]:
    """How the delivery attempts ended: sent, transient, unknown, ... (None: never finished)."""
    from recsys.db.models import DeliveryAttemptRow

    with rig.db.session() as s:
        return Counter(str(o) for o in s.scalars(select(DeliveryAttemptRow.outcome)).all())
