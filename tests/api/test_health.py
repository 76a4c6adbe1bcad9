from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from recsys.settings import Settings


def test_it_reports_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


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
