"""Conformance: our Mail Send requests against SendGrid's own OpenAPI description.

Prism serves ``../shared/specs/sendgrid/tsg_mail_v3.yaml`` as a validating mock: a request
that breaks the spec (a wrong type, a missing field, more than 1,000 personalizations) gets a
4xx instead of 202. The real backends send to it unchanged, in both modes. The stand-in in
``recsys/testing/sendgrid.py`` checks the same bodies more loosely but much faster; this test
keeps the two honest. Skipped when Prism (``PAPERBOY_PRISM_BIN``, set by ``.ci/run``) or
``../shared`` is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from recsys.delivery import DeliveryError, SendGridBackend, SendGridTemplateBackend, compose
from recsys.delivery.backends import MailSendClient
from recsys.testing.processes import free_port
from recsys.testing.samples import FROM, SENT_AT, ada_digest
from tests.conftest import PROJECT_ROOT

SPEC = PROJECT_ROOT.parent / "shared" / "specs" / "sendgrid" / "tsg_mail_v3.yaml"
API_KEY = "SG.conformance"
START_TIMEOUT_S = 60.0

pytestmark = pytest.mark.timeout(120)


def _prism() -> str:
    binary = os.environ.get("PAPERBOY_PRISM_BIN")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("PAPERBOY_PRISM_BIN is unset or not executable (.ci/run installs Prism)")
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is absent (../shared only sits beside the project in CI)")
    return binary


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Prism exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"Prism did not listen within {START_TIMEOUT_S:.0f}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def prism_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary, port = _prism(), free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, "mock", "--host", "127.0.0.1", "--port", str(port), str(SPEC)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_rendered_message_conforms(prism_url: str) -> None:
    backend = SendGridBackend(API_KEY, prism_url, timeout_s=10.0)
    backend.send(compose(ada_digest(), FROM, now=SENT_AT), digest_id=42)  # 202, or it raises


def test_a_template_batch_conforms(prism_url: str) -> None:
    backend = SendGridTemplateBackend(
        API_KEY, prism_url, 10.0, template_id="d-0123456789abcdef0123456789abcdef", from_email=FROM
    )
    digests = [replace(ada_digest(), digest_id=i, to_email=f"r{i}@example.org") for i in range(3)]
    backend.send_batch(digests)


def test_prism_refuses_what_breaks_the_spec(prism_url: str) -> None:
    # The control: without it, a Prism that accepted everything would pass the tests above.
    client = MailSendClient(API_KEY, prism_url, timeout_s=10.0)
    too_many = {
        "from": {"email": "digest@paperboy.example"},
        "template_id": "d-0123456789abcdef0123456789abcdef",
        "personalizations": [{"to": [{"email": f"r{i}@example.org"}]} for i in range(1001)],
    }
    with pytest.raises(DeliveryError, match="HTTP 4") as caught:
        client.post(too_many, "1001 digests")
    assert not caught.value.transient and not caught.value.unknown
