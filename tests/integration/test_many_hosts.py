"""Workers on two "hosts" share nothing but the database and the broker: each has its own
data folder, neither holds the model when the run starts, and together they send every
digest exactly once."""

from __future__ import annotations

import email
import email.policy
import os
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from api.demo import load_world
from api.digest_run import wait_until_final
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.testing.processes import RedisServer
from recsys.training import store
from recsys.training.nightly import train
from workers.embedded import Embedded

pytestmark = pytest.mark.integration
N_USERS = 60


@pytest.fixture()
def broker_url(tmp_path: Path) -> Iterator[str]:
    url = os.environ.get("PAPERBOY_TEST_REDIS_URL")
    if url:
        redis.Redis.from_url(url).flushdb()  # no task left over from an earlier test
        yield url
        return
    server = RedisServer(tmp_path)
    server.start()
    yield server.url
    server.stop()


def _recipients(outbox: Path) -> list[str]:
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(outbox.glob("*.eml"))
    ]
    return [str(m["To"].addresses[0].addr_spec) for m in messages]


def test_two_hosts_fetch_the_published_model_and_send_each_digest_once(
    db: Database, settings: Settings, broker_url: str, tmp_path: Path
) -> None:
    shared = {"redis_url": broker_url, "score_chunk_size": 4, "schedule_jitter_s": 0}
    trainer, host_a, host_b = (
        settings.model_copy(update={**shared, "data_dir": tmp_path / name})
        for name in ("trainer", "host-a", "host-b")
    )
    now = datetime.now(UTC)
    world = generate_world(N_USERS, 300, seed=5, now=now)
    with db.session() as s:
        load_world(s, world, now)
        version = train(s, trainer, now).version  # on a third host: neither worker has it

    with ExitStack() as stack:
        runtimes = [stack.enter_context(Embedded(h, concurrency=1)) for h in (host_a, host_b)]
        assert runtimes[0].celery is not None
        runtimes[0].celery.send_task("paperboy.plan")
        alive = lambda: all(r.alive() for r in runtimes)  # noqa: E731
        counts = wait_until_final(db, now, N_USERS, alive, 240, lambda *_: None)

    assert dict(counts) == {"sent": N_USERS}
    sent_by = {h.data_dir.name: _recipients(h.outbox_dir) for h in (host_a, host_b)}
    every = sent_by["host-a"] + sent_by["host-b"]
    assert sorted(every) == sorted(world.user_emails)  # each digest once, on one host
    assert sent_by["host-a"] and sent_by["host-b"], {k: len(v) for k, v in sent_by.items()}
    for host in (host_a, host_b):  # both scored, so both fetched the model from the database
        assert store.is_cached(version, host.models_dir), host.data_dir.name
        assert (host.data_dir / "embeddings" / version / "ids.npy").is_file()
