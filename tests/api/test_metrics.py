"""``/metrics``: names and values after a known history, read from the rows at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import redis_py_url
from recsys.catalog.harvest import state
from recsys.db.models import (
    DeliveryAttemptRow,
    DigestRow,
    EventRow,
    PaperRow,
    ProviderEventRow,
    UserRow,
)
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world
from workers.embedded import PrivateRedis

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _digests(db: Database, user: UserRow, statuses: list[str]) -> list[int]:
    rows = [
        DigestRow(user_id=user.id, period=f"p{i}", status=status, created_at=NOW, updated_at=NOW)
        for i, status in enumerate(statuses)
    ]
    with db.session() as session:
        session.add_all(rows)
    return [row.id for row in rows]


def _attempt(digest_id: int, outcome: str | None, seconds: float) -> DeliveryAttemptRow:
    finished = NOW + timedelta(seconds=seconds) if outcome else None
    return DeliveryAttemptRow(
        digest_id=digest_id, attempt=1, backend="sendgrid", started_at=NOW,
        finished_at=finished, outcome=outcome,
    )  # fmt: skip


@pytest.fixture()
def history(db: Database, alice: UserRow, paper: PaperRow) -> None:
    """3 sent, 1 failed, 1 sending digests; their attempts; 2 clicks (1 by a scanner), 1 less;
    a bounce; a source whose last harvest read 12 and added 5."""
    ids = _digests(db, alice, ["sent", "sent", "sent", "failed", "sending"])
    with db.session() as s:
        s.add_all(
            [
                _attempt(ids[0], "sent", 0.2),
                _attempt(ids[1], "sent", 0.4),
                _attempt(ids[2], "sent", 1.0),
                _attempt(ids[3], "permanent", 0.3),
                _attempt(ids[4], None, 0),
            ]
        )
        for kind, suspect in [("click", False), ("click", True), ("less", False)]:
            s.add(EventRow(user_id=alice.id, paper_id=paper.id, kind=kind, suspect=suspect,
                           digest_id=ids[0], created_at=NOW))  # fmt: skip
        s.add(ProviderEventRow(provider="sendgrid", event_id="e1", digest_id=ids[3],
                               email=alice.email, kind="bounce", occurred_at=NOW,
                               received_at=NOW))  # fmt: skip
        assert state.acquire(s, "arxiv-cs", "arxiv-oai", "me", NOW, timedelta(hours=1))
        state.finish(
            s, "arxiv-cs", "me", NOW,
            result={"read": 12, "new": 5, "updated": 1, "skipped": 0, "errors": ["x:1: bad"]},
        )  # fmt: skip


def test_it_reports_digests_emails_latency_events_and_harvests(
    client: TestClient, history: None
) -> None:
    found = scrape(client)

    assert found[("paperboy_database_up", ())] == 1
    assert found[("paperboy_digests", (("status", "sent"),))] == 3
    assert found[("paperboy_digests", (("status", "failed"),))] == 1
    assert found[("paperboy_digests", (("status", "sending"),))] == 1
    sent = ("paperboy_email_attempts_total", (("backend", "sendgrid"), ("outcome", "sent")))
    permanent = (sent[0], (("backend", "sendgrid"), ("outcome", "permanent")))
    pending = (sent[0], (("backend", "sendgrid"), ("outcome", "pending")))
    assert (found[sent], found[permanent], found[pending]) == (3, 1, 1)
    # Closed attempts took 0.2, 0.3, 0.4 and 1.0 s: nearest-rank median 0.3, p90 and p99 1.0.
    latency = "paperboy_email_provider_seconds"
    assert found[(latency, (("backend", "sendgrid"), ("quantile", "0.5")))] == 0.3
    assert found[(latency, (("backend", "sendgrid"), ("quantile", "0.9")))] == 1.0
    assert found[("paperboy_email_provider_sampled_attempts", (("backend", "sendgrid"),))] == 4
    click = ("paperboy_events_total", (("kind", "click"), ("suspect", "false")))
    assert found[click] == 1
    assert found[(click[0], (("kind", "click"), ("suspect", "true")))] == 1
    assert found[(click[0], (("kind", "less"), ("suspect", "false")))] == 1
    assert found[("paperboy_provider_events_total", (("kind", "bounce"),))] == 1
    source = (("source", "arxiv-cs"),)
    assert found[("paperboy_harvest_last_ok", source)] == 1
    assert found[("paperboy_harvest_last_finished_timestamp_seconds", source)] == NOW.timestamp()
    papers = "paperboy_harvest_last_papers"
    assert found[(papers, (("result", "new"), ("source", "arxiv-cs")))] == 5
    assert found[(papers, (("result", "errors"), ("source", "arxiv-cs")))] == 1


def test_it_holds_no_address_and_no_token(client: TestClient, history: None) -> None:
    body = client.get("/metrics").text

    assert "alice" not in body and "@" not in body


def test_it_reports_the_active_model_and_its_age(db: Database, settings: Settings) -> None:
    with db.session() as s:
        world.load(s)
        version = train(s, settings, NOW).version
    with TestClient(create_app(settings, clock=lambda: NOW + timedelta(hours=5))) as client:
        found = scrape(client)

    assert found[("paperboy_model_info", (("version", version),))] == 1
    assert found[("paperboy_model_age_seconds", ())] == 5 * 3600


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "broker" / "redis.sock")
    yield server
    server.stop()


def test_it_reports_the_queue_depth_and_the_running_tasks(
    db: Database, settings: Settings, broker: PrivateRedis
) -> None:
    import redis

    with redis.Redis.from_url(redis_py_url(broker.url)) as r:
        r.rpush("paperboy", "a", "b", "c")
        r.hset("unacked", "tag-1", "m")
    live = settings.model_copy(update={"redis_url": broker.url})
    with TestClient(create_app(live)) as client:
        found = scrape(client)

    assert found[("paperboy_broker_up", ())] == 1
    assert found[("paperboy_queue_tasks", (("queue", "paperboy"), ("state", "waiting")))] == 3
    assert found[("paperboy_queue_tasks", (("queue", "paperboy"), ("state", "unacked")))] == 1


def test_a_broker_or_database_down_is_a_zero_not_an_error(settings: Settings) -> None:
    down = settings.model_copy(
        update={
            "database_url": "postgresql+psycopg://x@127.0.0.1:1/x",
            "redis_url": "redis://127.0.0.1:1/0",
        }
    )
    with TestClient(create_app(down)) as client:
        found = scrape(client)

    assert found[("paperboy_database_up", ())] == 0
    assert found[("paperboy_broker_up", ())] == 0


def test_a_flood_of_scrapes_runs_the_queries_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.metrics as metrics_module

    calls = []
    real = metrics_module.database_families

    def counted(session: object) -> object:
        calls.append(1)
        return real(session)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics_module, "database_families", counted)
    bodies = {client.get("/metrics").text for _ in range(20)}

    assert len(calls) == 1 and len(bodies) == 1
