"""The SendGrid stand-in's own HTTP handling (its Mail Send rules are tested with the backend)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from recsys.testing.sendgrid import MAIL_SEND_PATH, STATS_PATH, SendGridStandIn

BODY = {
    "personalizations": [{"to": [{"email": "a@example.org"}], "custom_args": {"digest_id": "7"}}],
    "from": {"email": "digest@example.org"},
    "subject": "Hi",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


@pytest.fixture()
def standin() -> Iterator[SendGridStandIn]:
    with SendGridStandIn() as sg:
        yield sg


def _connect(standin: SendGridStandIn) -> http.client.HTTPConnection:
    parts = urlsplit(standin.url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)


def _post(conn: http.client.HTTPConnection, key: str, **headers: str) -> http.client.HTTPResponse:
    conn.request(
        "POST", MAIL_SEND_PATH, body=json.dumps(BODY),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )  # fmt: skip
    response = conn.getresponse()
    response.read()
    return response


def test_requests_share_one_kept_alive_connection(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    statuses = [_post(conn, standin.api_key).status for _ in range(3)]
    assert statuses == [202, 202, 202]
    assert standin.connections == 1
    assert standin.accepted_digest_ids == [7, 7, 7]


def test_each_reply_carries_its_own_message_id(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    ids = {_post(conn, standin.api_key).headers["X-Message-Id"] for _ in range(3)}
    assert len(ids) == 3
    assert ids == {a.message_id for a in standin.accepted}


def test_header_names_are_case_insensitive(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    conn.request("POST", MAIL_SEND_PATH, body=json.dumps(BODY),
                 headers={"AUTHORIZATION": f"Bearer {standin.api_key}"})  # fmt: skip
    assert conn.getresponse().status == 202


def test_a_wrong_key_is_401_and_the_connection_stays_usable(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    assert _post(conn, "SG.wrong").status == 401
    assert _post(conn, standin.api_key).status == 202
    assert standin.connections == 1


def test_connection_close_is_honoured(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    response = _post(conn, standin.api_key, Connection="close")
    assert (response.status, response.headers["Connection"]) == (202, "close")
    assert conn.sock is None or conn.sock.recv(1) == b""  # the server closed its end


def test_stats_and_unknown_paths(standin: SendGridStandIn) -> None:
    conn = _connect(standin)
    _post(conn, standin.api_key)
    conn.request("GET", STATS_PATH)
    stats = json.loads(conn.getresponse().read())
    assert (stats["accepted_requests"], stats["unique_digests"]) == (1, 1)
    conn.request("GET", "/v3/nothing")
    response = conn.getresponse()
    assert response.status == 404 and b"No route" in response.read()


def test_a_client_that_hangs_up_mid_request_does_not_stop_the_server(
    standin: SendGridStandIn,
) -> None:
    parts = urlsplit(standin.url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=5) as raw:
        raw.sendall(b"POST /v3/mail/send HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert _post(_connect(standin), standin.api_key).status == 202


def test_an_incident_can_start_late_and_end() -> None:
    with SendGridStandIn(failure_rate=1.0, healthy_requests=2, faulty_requests=1) as sg:
        conn = _connect(sg)
        statuses = [_post(conn, sg.api_key).status for _ in range(4)]
    assert statuses[:2] == [202, 202] and statuses[2] >= 429 and statuses[3] == 202
