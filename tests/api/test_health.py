from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from recsys.catalog.harvest import state
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.training.nightly import train
from tests.conftest import NOW
from tests.recsys import world
from workers.embedded import PrivateRedis


def test_it_reports_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert body["model"] is None and body["sources"] == []  # nothing trained or harvested


def test_live_answers_without_touching_anything(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql+psycopg://x@127.0.0.1:1/x"})
    with TestClient(create_app(down)) as client:
        assert client.get("/health/live").json() == {"status": "ok"}


def test_it_reports_the_broker_the_model_and_its_age(db: Database, settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with db.session() as s:
        world.load(s)
        trained = train(s, settings, NOW)
        assert state.acquire(s, "arxiv-cs", "arxiv-oai", "me", NOW, timedelta(hours=1))
        state.finish(s, "arxiv-cs", "me", NOW, result={}, error="503 for an hour")
    with TestClient(create_app(broken, clock=lambda: NOW + timedelta(hours=5))) as client:
        body = client.get("/health").json()

    assert body["status"] == "ok"  # a broker down does not take the API out of service
    assert body["broker"].startswith("ConnectionError")
    assert body["model"]["version"] == trained.version
    assert body["model"]["age_hours"] == 5.0
    [source] = body["sources"]
    assert (source["name"], source["last_status"]) == ("arxiv-cs", "failed")
    assert source["last_error"] == "503 for an hour"


def test_it_answers_503_with_the_reason_when_the_database_is_down(settings: Settings) -> None:
    # Port 1 refuses connections at once, so this fails fast on any machine.
    down = settings.model_copy(update={"database_url": "postgresql+psycopg://x@127.0.0.1:1/x"})
    with TestClient(create_app(down)) as client:
        response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert "127.0.0.1" in body["database"]


def test_it_publishes_its_openapi_description(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert client.get("/docs").status_code == 200
    assert spec["paths"]["/users"]["post"]["description"].startswith("Subscribe a new user")
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_the_embedded_brokers_unix_socket_url_is_reachable(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    server = PrivateRedis(tmp_path / "broker" / "redis.sock")
    try:
        assert server.url.startswith("redis+socket://")  # Celery's spelling, not redis-py's
        embedded = settings.model_copy(update={"redis_url": server.url})
        with TestClient(create_app(embedded)) as client:
            body = client.get("/health").json()
    finally:
        server.stop()

    assert body["broker"] == "ok"
