from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from recsys.settings import Settings


def test_it_refuses_admin_requests_without_a_key(client: TestClient) -> None:
    response = client.get("/users")

    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]


def test_it_refuses_admin_requests_with_a_wrong_key(client: TestClient) -> None:
    for key in (b"wrong-key", b"test-admin-key ", "clé".encode("latin-1")):
        response = client.get("/users", headers={b"X-API-Key": key})

        assert response.status_code == 401


def test_it_serves_admin_requests_with_the_right_key(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.get("/users", headers=admin)

    assert response.status_code == 200
    assert response.json() == {"items": [], "count": 0}


def test_it_answers_503_when_no_admin_key_is_configured(settings: Settings) -> None:
    disabled = settings.model_copy(update={"admin_api_key": None})
    with TestClient(create_app(disabled)) as client:
        response = client.post("/events", headers={"X-API-Key": "anything"}, json={})

    assert response.status_code == 503
    assert response.json() == {"detail": "admin API disabled: set PAPERBOY_ADMIN_API_KEY"}


def test_the_admin_routes_document_their_401_and_503(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for path in ("/users", "/users/{user_id}", "/events"):
        for operation in paths[path].values():
            assert {"401", "503"} <= operation["responses"].keys(), path
