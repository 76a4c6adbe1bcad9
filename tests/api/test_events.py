from __future__ import annotations

from fastapi.testclient import TestClient

from recsys.db.models import PaperRow, UserRow
from recsys.db.session import Database
from tests.api.conftest import stored_events
from tests.conftest import NOW


def test_it_records_an_event(
    client: TestClient, admin: dict[str, str], db: Database, alice: UserRow, paper: PaperRow
) -> None:
    event = {"user_id": alice.id, "paper_id": paper.id, "kind": "more"}

    response = client.post("/events", headers=admin, json=event)

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in event} == event
    assert body["digest_id"] is None
    [stored] = stored_events(db)
    assert (stored.id, stored.kind, stored.created_at) == (body["id"], "more", NOW)


def test_it_answers_404_naming_the_unknown_user_or_paper(
    client: TestClient, admin: dict[str, str], db: Database, alice: UserRow, paper: PaperRow
) -> None:
    no_user = {"user_id": 999999, "paper_id": paper.id, "kind": "click"}
    no_paper = {"user_id": alice.id, "paper_id": 999999, "kind": "click"}

    user_response = client.post("/events", headers=admin, json=no_user)
    paper_response = client.post("/events", headers=admin, json=no_paper)

    assert user_response.status_code == paper_response.status_code == 404
    assert user_response.json() == {"detail": "user_id: no user 999999"}
    assert paper_response.json() == {"detail": "paper_id: no paper 999999"}
    assert stored_events(db) == []


def test_it_refuses_an_unknown_event_kind(
    client: TestClient, admin: dict[str, str], alice: UserRow, paper: PaperRow
) -> None:
    event = {"user_id": alice.id, "paper_id": paper.id, "kind": "seed"}

    response = client.post("/events", headers=admin, json=event)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "kind"]
