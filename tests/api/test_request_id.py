"""Every request has an id: in its response, and on every line logged while it is served."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.middleware import RequestId
from recsys import logs
from recsys.testing.processes import free_port


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, access.handlers[:], access.propagate, access.level)
    out = io.StringIO()
    config = logs.logging_config("INFO", "json")
    config["handlers"]["default"]["stream"] = out
    logging.config.dictConfig(config)
    yield out
    root.handlers, root.level, access.handlers, access.propagate, access.level = saved


def _logging_route(_request: Request) -> PlainTextResponse:
    logging.getLogger("api.deps").info("inside the request")
    return PlainTextResponse("ok")


def test_a_line_logged_while_serving_carries_the_requests_id(log_lines: io.StringIO) -> None:
    app = RequestId(Starlette(routes=[Route("/x", _logging_route)]))
    with TestClient(app) as client:
        response = client.get("/x")

    lines = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    [line] = [x for x in lines if x["message"] == "inside the request"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert len(line["request_id"]) == 32  # a fresh uuid4, hex


def test_two_requests_get_two_ids(client: TestClient) -> None:
    first = client.get("/health/live").headers["x-request-id"]
    second = client.get("/health/live").headers["x-request-id"]

    assert first and second and first != second


def test_a_proxys_request_id_is_kept_when_plain_and_replaced_when_not(client: TestClient) -> None:
    kept = client.get("/health/live", headers={"X-Request-ID": "lb-7f3a.2"})
    replaced = client.get("/health/live", headers={"X-Request-ID": "a b" + "x" * 80})

    assert kept.headers["x-request-id"] == "lb-7f3a.2"
    assert replaced.headers["x-request-id"] != "a b" + "x" * 80
    assert len(replaced.headers["x-request-id"]) == 32


def test_uvicorns_access_line_carries_the_id_it_answered_with(
    app: FastAPI, log_lines: io.StringIO
) -> None:
    # log_config=None: uvicorn keeps the configuration the fixture made, as it does in
    # `paperboy serve`, where it applies recsys.logs' own dict.
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{config.port}/health/live") as response:
            answered = response.headers["x-request-id"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    lines = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    [access] = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert "GET /health/live" in access["message"]
    assert access["request_id"] == answered
