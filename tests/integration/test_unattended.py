"""The service runs by itself: ``paperboy run`` on embedded defaults, a source to harvest, two
people signing up through the API, and nothing else. No ingest, no train, no digest run."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import pytest

from recsys.testing.processes import free_port
from recsys.testing.sources import FakeOai, OaiRecord

pytestmark = pytest.mark.integration
TIMEOUT_S = 240.0
PEOPLE = {"ada@example.org": "graph neural networks", "ben@example.org": "protein design"}


def _records() -> list[OaiRecord]:
    """Forty recent papers, half on each person's topic (dated today: the first harvest
    reaches back a few days)."""
    today = datetime.now(UTC).date().isoformat()
    topics = ["graph neural networks for molecules", "protein design with diffusion"]
    return [
        OaiRecord(
            arxiv_id=f"2612.{n:05d}",
            title=f"{topics[n % 2].capitalize()}: study {n}",
            abstract=f"We study {topics[n % 2]} on benchmark {n}.",
            datestamp=today,
            created=today,
        )
        for n in range(40)
    ]


def _messages(outbox: Path) -> list[EmailMessage]:
    parsed = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parsed.append(message)  # type: ignore[arg-type]
    return parsed


def _wait(what: str, check: object, timeout_s: float = TIMEOUT_S, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""


def test_harvest_train_confirm_and_first_digests_happen_with_no_command(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeOai(_records(), page_size=15) as oai:
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[source]]\nname = "arxiv-cs"\nkind = "arxiv-oai"\nurl = "{oai.base_url}/oai"\n'
            'sets = ["cs"]\nmin_interval_s = 0\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
        env |= {
            "PAPERBOY_DATA_DIR": str(tmp_path / "var"),
            "PAPERBOY_SOURCES": str(sources),
            "PAPERBOY_HARVEST_EVERY_S": "2",
            "PAPERBOY_PLAN_INTERVAL_S": "2",
            "PAPERBOY_PUBLIC_BASE_URL": base,
            "OPENBLAS_NUM_THREADS": "1",
        }
        log = tmp_path / "run.log"
        with open(log, "wb") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "run", "--port", str(port)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        children: list[psutil.Process] = []
        try:
            _wait("the API", lambda: _up(f"{base}/health"), log=log)
            children = psutil.Process(service.pid).children(recursive=True)
            for address, topic in PEOPLE.items():
                body = {"email": address, "interests": [{"kind": "keyword", "value": topic}]}
                assert httpx.post(f"{base}/subscriptions", json=body).status_code == 202

            outbox = tmp_path / "var" / "outbox"
            _wait("two confirmation e-mails", lambda: len(_messages(outbox)) >= 2, log=log)
            for message in _messages(outbox):
                link = re.search(r"https?://\S+/confirm/\S+", _text(message))
                assert link is not None, _text(message)
                assert httpx.post(link.group(0).rstrip(".")).status_code in (200, 303)

            def digests() -> dict[str, EmailMessage]:
                found = {}
                for message in _messages(outbox):
                    if "/confirm/" not in _text(message):
                        found[message["To"].addresses[0].addr_spec] = message
                return found

            _wait("each person's first digest", lambda: set(digests()) == set(PEOPLE), log=log)
            for address, topic in PEOPLE.items():
                text = _text(digests()[address])
                assert "study" in text  # the harvested papers, not an empty digest
                assert topic.split()[0] in text.lower()
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                code = service.wait(timeout=60)
            finally:
                if service.poll() is None:
                    service.kill()
        assert code == 0, log.read_text(errors="replace")[-3000:]
        _wait("no child left", lambda: not any(_alive(c) for c in children), 15)
        assert oai.params, "the stand-in was never asked"


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
