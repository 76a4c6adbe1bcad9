from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from recsys.db.models import UserRow
from tests.conftest import NOW

BOB = {
    "email": "Bob@Example.org",
    "name": "Bob",
    "timezone": "Europe/Paris",
    "digest_size": 5,
    "interests": [{"kind": "keyword", "value": "graph neural networks"}],
}


def subscribe(client: TestClient, admin: dict[str, str], **changes: Any) -> Any:
    return client.post("/users", headers=admin, json={**BOB, **changes})


def test_it_subscribes_a_user_with_interests(client: TestClient, admin: dict[str, str]) -> None:
    response = subscribe(client, admin)

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "bob@example.org"
    assert body["status"] == "active"
    assert body["timezone"] == "Europe/Paris"
    assert body["digest_size"] == 5
    assert body["interests"] == [{"kind": "keyword", "value": "graph neural networks"}]
    assert body["next_digest_at"] == body["created_at"] == NOW.isoformat().replace("+00:00", "Z")


def test_it_answers_409_when_the_email_is_already_subscribed(
    client: TestClient, admin: dict[str, str]
) -> None:
    subscribe(client, admin)

    response = subscribe(client, admin, email="BOB@example.org")

    assert response.status_code == 409
    assert "already subscribed" in response.json()["detail"]


def test_it_answers_422_naming_the_email_when_it_is_not_an_address(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = subscribe(client, admin, email="bob at example")

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "email"]
    assert "not an e-mail address" in error["msg"]


def test_it_answers_422_naming_the_timezone_when_it_is_unknown(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = subscribe(client, admin, timezone="Mars/Olympus_Mons")

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "timezone"]


def test_it_refuses_a_digest_size_outside_1_to_50_or_an_unknown_interest_kind(
    client: TestClient, admin: dict[str, str]
) -> None:
    too_big = subscribe(client, admin, digest_size=51)
    bad_kind = subscribe(client, admin, interests=[{"kind": "mood", "value": "happy"}])

    assert too_big.status_code == bad_kind.status_code == 422
    assert too_big.json()["detail"][0]["loc"] == ["body", "digest_size"]
    assert bad_kind.json()["detail"][0]["loc"] == ["body", "interests", 0, "kind"]


def test_it_shows_a_user_by_id_and_404s_an_unknown_one(
    client: TestClient, admin: dict[str, str], alice: UserRow
) -> None:
    found = client.get(f"/users/{alice.id}", headers=admin)
    missing = client.get("/users/999999", headers=admin)

    assert found.status_code == 200
    assert found.json()["email"] == "alice@example.org"
    assert found.json()["interests"] == [{"kind": "keyword", "value": "nlp"}]
    assert missing.status_code == 404


def test_it_lists_users_in_sign_up_order_a_page_at_a_time(
    client: TestClient, admin: dict[str, str]
) -> None:
    for name in ("ann", "ben", "cat"):
        subscribe(client, admin, email=f"{name}@example.org")

    page = client.get("/users", headers=admin, params={"limit": 2, "offset": 1}).json()

    assert [u["email"] for u in page["items"]] == ["ben@example.org", "cat@example.org"]
    assert page["count"] == 3
