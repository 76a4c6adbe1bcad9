from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from recsys.db.session import Database
from tests.api.conftest import add_paper
from tests.conftest import NOW


def test_it_lists_the_newest_papers_first_a_page_at_a_time(
    client: TestClient, db: Database
) -> None:
    for day, title in enumerate(["Oldest", "Middle", "Newest"]):
        add_paper(db, title, created_at=NOW + timedelta(days=day))

    first = client.get("/papers", params={"limit": 2}).json()
    second = client.get("/papers", params={"limit": 2, "offset": 2}).json()

    assert [p["title"] for p in first["items"]] == ["Newest", "Middle"]
    assert [p["title"] for p in second["items"]] == ["Oldest"]
    assert first["count"] == second["count"] == 3


def test_it_shows_one_paper_by_id(client: TestClient, db: Database) -> None:
    paper = add_paper(db, "Deep Residual Learning", url="https://arxiv.org/abs/1512.03385")

    response = client.get(f"/papers/{paper.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == paper.id
    assert body["title"] == "Deep Residual Learning"
    assert body["url"] == "https://arxiv.org/abs/1512.03385"
    assert body["authors"] == ["A. Author"]


def test_it_answers_404_for_an_unknown_paper(client: TestClient) -> None:
    response = client.get("/papers/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "no paper 999999"}


def test_it_refuses_page_sizes_outside_1_to_200(client: TestClient) -> None:
    for limit in (0, 201):
        response = client.get("/papers", params={"limit": limit})

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
