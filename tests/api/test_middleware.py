"""Headers on every response, and body caps that hold while a body streams in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import pages
from api.app import create_app
from api.forms import MAX_FORM_BYTES
from api.middleware import ADDRESS_FORMS, DEFAULT_MAX_BODY, EvenTiming
from recsys.db.models import UserRow
from recsys.settings import Settings
from recsys.subscribers.links import LinkMaker
from recsys.testing.processes import free_port
from tests.api.conftest import path_of

CHUNK = 64 * 1024


@pytest.mark.parametrize("path", ["/signup", "/health", "/openapi.json", "/docs", "/c/bad.token"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp


def test_the_policy_allows_exactly_the_pages_own_style_block(client: TestClient) -> None:
    page = client.get("/signup")

    (style,) = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    styles = re.findall(r"style-src ([^;]*);", page.headers["content-security-policy"])[0]
    # This page's block, and the admin layout's (tests/api/test_admin.py): one per layout.
    assert f"'sha256-{digest}'" in styles.split()
    assert len(styles.split()) == len(pages.LAYOUTS)


def test_a_route_setting_a_header_itself_keeps_one_copy(
    client: TestClient, settings: Settings, alice: UserRow, links: LinkMaker
) -> None:
    response = client.get(path_of(links.unsubscribe(alice.id, alice.created_at)))

    assert response.headers.get_list("referrer-policy") == ["no-referrer"]


def test_docs_are_served_without_third_party_script(client: TestClient) -> None:
    docs = client.get("/docs")

    assert docs.status_code == 200
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()
    assert "POST /subscriptions" in docs.text
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Paperboy"


# Body caps ---------------------------------------------------------------------------------


def test_a_declared_length_over_the_cap_is_refused_before_reading(client: TestClient) -> None:
    headers = {"content-type": "application/json", "content-length": str(DEFAULT_MAX_BODY + 1)}

    response = client.post("/users", content=b"{}", headers=headers)

    assert response.status_code == 413
    assert response.headers["x-frame-options"] == "DENY"  # the limiter's answer has them too


def test_a_form_over_its_cap_is_refused_with_413(client: TestClient) -> None:
    body = b"email=a%40example.org&library=" + b"x" * MAX_FORM_BYTES

    assert client.post("/signup", content=body, headers=_form).status_code == 413


def test_a_form_under_its_cap_is_read(client: TestClient) -> None:
    body = b"email=a%40example.org&library=" + b"x" * (2 * DEFAULT_MAX_BODY)

    response = client.post("/signup", content=body, headers=_form)

    # Larger than the default cap, within the form's: read, and the sign-up answered.
    assert response.status_code == 200 and "Check your inbox" in response.text


_form = {"content-type": "application/x-www-form-urlencoded"}


class ChunkedBody:
    """An ASGI ``receive`` for a 400 MB body sent chunked, counting what the app read."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        size = min(CHUNK, self.left)
        self.left -= size
        self.read += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.left > 0}


def call_chunked(app: FastAPI, path: str, body: ChunkedBody) -> list[dict[str, Any]]:
    """POST ``body`` to ``path`` with no Content-Length, as a chunked upload arrives."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked"),
                    (b"content-type", _form["content-type"].encode())],
    }  # fmt: skip
    asyncio.run(app(scope, body, send))
    return sent


@pytest.fixture()
def started(app: FastAPI) -> Iterator[FastAPI]:
    with TestClient(app):  # runs the lifespan, as a server would
        yield app


@pytest.mark.parametrize(
    ("path", "cap"), [("/signup", MAX_FORM_BYTES), ("/webhooks/sendgrid", 16 * 1024 * 1024)]
)
def test_a_chunked_400_megabyte_body_is_refused_while_it_streams(
    started: FastAPI, path: str, cap: int
) -> None:
    body = ChunkedBody(400 * 1024 * 1024)

    sent = call_chunked(started, path, body)

    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    # Reading stopped at the first chunk past the cap: the rest was never taken in.
    assert cap < body.read <= cap + CHUNK


@pytest.fixture()
def served(app: FastAPI) -> Iterator[int]:
    """The app served by a real uvicorn in a thread; yields its port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield config.port
    server.should_exit = True
    thread.join(timeout=10)


def test_a_real_server_answers_413_to_a_chunked_400_megabyte_post_without_reading_it(
    served: int,
) -> None:
    total, chunk = 400 * 1024 * 1024, b"x" * (1024 * 1024)
    rss_before = psutil.Process().memory_info().rss
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        sock.sendall(
            b"POST /signup HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        while sent < total and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: the rest is never sent
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(65536)
        answer = answer or sock.recv(65536)

    assert answer.startswith(b"HTTP/1.1 413 ")
    # The server stopped at the 6 MB cap; what went beyond sat in socket buffers.
    assert sent < 64 * 1024 * 1024
    assert psutil.Process().memory_info().rss - rss_before < 100 * 1024 * 1024


class _FakeTime:
    """A clock the app under test advances, and the sleeps the middleware asked for."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _working_app(fake: _FakeTime, work_s: float) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        fake.now += work_s  # the route's and the commit's time
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Check your inbox"})

    return app


@pytest.mark.parametrize("work_s", [0.01, 0.2])  # a known address, a new one
def test_an_address_form_answers_at_the_floor_whatever_the_work(work_s: float) -> None:
    fake = _FakeTime()
    app = EvenTiming(_working_app(fake, work_s), ADDRESS_FORMS, 0.5, fake.clock, fake.sleep)

    response = TestClient(app).post("/subscriptions", json={})

    assert response.status_code == 200
    assert fake.now == pytest.approx(100.5)  # answered 0.5 s after arrival, either way
    assert fake.slept == [pytest.approx(0.5 - work_s)]


def test_other_requests_and_slow_ones_are_not_held_back() -> None:
    fake = _FakeTime()
    app = EvenTiming(_working_app(fake, 0.01), ADDRESS_FORMS, 0.5, fake.clock, fake.sleep)
    slow = EvenTiming(_working_app(fake, 0.9), ADDRESS_FORMS, 0.5, fake.clock, fake.sleep)

    TestClient(app).get("/signup")  # the page itself
    TestClient(app).post("/preferences/token/pause")
    TestClient(slow).post("/signup")

    assert fake.slept == []


@pytest.mark.usefixtures("db")
def test_sign_up_of_a_new_and_a_known_address_both_wait_for_the_floor(
    settings: Settings, alice: UserRow
) -> None:
    app = create_app(settings.model_copy(update={"signup_answer_s": 0.3}), enqueue=lambda *a: None)
    with TestClient(app) as client:
        elapsed = []
        for email in ("new@example.org", alice.email):
            started = time.monotonic()
            response = client.post("/subscriptions", json={"email": email})
            elapsed.append(time.monotonic() - started)
            assert response.status_code == 202

    assert min(elapsed) >= 0.3
