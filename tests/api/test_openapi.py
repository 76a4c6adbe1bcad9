from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.openapi import NOT_JSON, finish


def test_a_405_allows_every_method_of_the_path_not_only_the_first_routes(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.options("/users", headers=admin)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_a_405_on_a_link_allows_its_head_and_get_routes(client: TestClient) -> None:
    response = client.put("/c/anything")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_other_http_errors_keep_fastapis_body(client: TestClient) -> None:
    response = client.get("/papers/123456")

    assert response.status_code == 404
    assert response.json() == {"detail": "no paper 123456"}


def test_a_redirect_is_described_without_a_body(app: FastAPI) -> None:
    answers = app.openapi()["paths"]["/c/{token}"]["get"]["responses"]

    assert "content" not in answers["303"]
    assert answers["303"]["headers"]["Location"]["required"] is True


def test_every_json_body_may_be_answered_400_when_it_is_not_json(app: FastAPI) -> None:
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert "400" in operation["responses"], (method, path)


def test_finish_keeps_a_routes_own_400() -> None:
    own = {"description": "Bad events."}
    spec: dict[str, Any] = {
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {"content": {"application/json": {}}},
                    "responses": {"400": own},
                },
                "put": {"requestBody": {"content": {"application/json": {}}}, "responses": {}},
            }
        }
    }

    finished = finish(spec)["paths"]["/x"]

    assert finished["post"]["responses"]["400"] is own
    assert finished["put"]["responses"]["400"] is NOT_JSON


def test_the_webhooks_signature_headers_are_described_as_required(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/webhooks/sendgrid"]["post"]
    headers = {p["name"]: p["required"] for p in operation["parameters"] if p["in"] == "header"}

    assert headers == {
        "X-Twilio-Email-Event-Webhook-Signature": True,
        "X-Twilio-Email-Event-Webhook-Timestamp": True,
    }
