"""The README's demo on embedded defaults, then a link from a sent e-mail through the API."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recsys.testing.processes import free_port

pytestmark = pytest.mark.integration
N_USERS = 5


def _embedded_env(base_url: str) -> dict[str, str]:
    """The caller's environment without any Paperboy setting: the embedded defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PAPERBOY_PUBLIC_BASE_URL"] = base_url
    return env


def _paperboy(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict]]:
    cwd = tmp_path_factory.mktemp("demo")
    base_url = f"http://127.0.0.1:{free_port()}"
    env = _embedded_env(base_url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = _paperboy("demo", "--users", str(N_USERS), "--json", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    yield cwd, base_url, json.loads(done.stdout)


@pytest.fixture(scope="module")
def server(demo_dir: tuple[Path, str, dict]) -> Iterator[str]:
    cwd, base_url, _ = demo_dir
    env = _embedded_env(base_url)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    port = base_url.rsplit(":", 1)[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", port],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_healthy(base_url)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_healthy(base_url: str) -> None:
    for _ in range(100):
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not become healthy")


def test_demo_sends_one_digest_per_user_into_the_outbox(demo_dir: tuple[Path, str, dict]) -> None:
    cwd, _, summary = demo_dir
    outbox = Path(summary["outbox"])
    assert summary["users"] == N_USERS
    assert summary["digests_sent"] == N_USERS
    assert outbox == (cwd / "var" / "outbox").resolve()
    recipients = [_message(p)["To"].addresses[0].addr_spec for p in outbox.glob("*.eml")]
    assert len(recipients) == N_USERS
    assert len(set(recipients)) == N_USERS


def _message(path: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_a_click_in_a_sent_email_is_recorded_and_lands_on_the_paper(
    demo_dir: tuple[Path, str, dict], server: str
) -> None:
    cwd, _, summary = demo_dir
    eml = sorted(Path(summary["outbox"]).glob("*.eml"))[0]
    text = _message(eml).get_body(("plain",)).get_content()
    click_url = re.search(r"Abstract: (\S+/c/\S+)", text).group(1)  # type: ignore[union-attr]
    assert click_url.startswith(server)

    response = httpx.get(click_url, follow_redirects=False, timeout=10)

    db = sqlite3.connect(cwd / "var" / "paperboy.db")
    clicks = db.execute(
        "SELECT e.paper_id, p.url FROM events e JOIN papers p ON p.id = e.paper_id "
        "WHERE e.kind = 'click' AND e.digest_id IS NOT NULL"
    ).fetchall()
    assert response.status_code == 303
    assert len(clicks) == 1
    assert response.headers["location"] == clicks[0][1]
    assert clicks[0][1].startswith("https://papers.example.org/synth-")
