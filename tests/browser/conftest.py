"""A real browser against a real server: headless Chromium, uvicorn, a Celery worker.

The API runs in a thread on a free port over the test database; a worker in a child
process sends e-mails through the file backend into the test's ``DATA_DIR/outbox``.
Skipped, saying why, where Debian's ``chromium`` or ``chromedriver`` is not installed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn

from api.app import create_app
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.testing.processes import free_port
from tests.conftest import NOW
from workers.embedded import Embedded

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The machine has no internet: without these Chromium stalls on refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,1600",
)


@dataclass(frozen=True)
class Site:
    base_url: str
    settings: Settings
    db: Database


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[object]:
    """Headless Chromium driven through its ChromeDriver, with a fresh profile."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.skip(f"{binary} is absent: install Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def site(db: Database, settings: Settings) -> Iterator[Site]:
    """The API on a free port and a worker, sharing the test database and DATA_DIR."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    configured = settings.model_copy(update={"public_base_url": base_url})
    if configured.redis_url:
        redis.Redis.from_url(configured.redis_url).flushdb()  # no task left from another test
    with Embedded(configured, concurrency=1) as runtime:
        server = uvicorn.Server(
            uvicorn.Config(
                # The world's papers are dated ``NOW``: a server on the wall clock would find
                # them too old to preview once a week has passed.
                create_app(runtime.settings, clock=lambda: NOW),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            _wait_until_up(base_url)
            yield Site(base_url, runtime.settings, db)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _wait_until_up(base_url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the API did not answer on {base_url} within {timeout_s} s")


def screenshot_dir() -> Path | None:
    """Where to save screenshots for the README (``PAPERBOY_SCREENSHOT_DIR``), if anywhere."""
    folder = os.environ.get("PAPERBOY_SCREENSHOT_DIR")
    return Path(folder) if folder else None
