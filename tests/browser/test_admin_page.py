"""The operator's /admin page in headless Chromium: log in, read the counts, search, pause.

With ``PAPERBOY_SCREENSHOT_DIR`` set it also photographs the page at a phone's 390 px and a
desktop's 1200 px (the README's ``docs/img/admin-*.png``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from recsys.db.models import DigestRow, ExperimentRow, ProviderEventRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.testing.processes import free_port
from recsys.training import store
from tests.browser.conftest import Site, screenshot_dir
from tests.browser.conftest import _wait_until_up as wait_until_up
from tests.conftest import NOW
from tests.recsys.training.conftest import Host, publish_version

pytestmark = pytest.mark.integration
KEY = "test-admin-key"
# Digests per day back from today, by status: a week an operator might see.
WEEK = [
    {"sent": 9, "skipped": 1},
    {"sent": 11, "failed": 1},
    {"sent": 10, "skipped": 2},
    {"sent": 12},
    {"sent": 8, "failed": 2, "unknown": 1},
    {"sent": 11, "skipped": 1},
    {"sent": 6, "failed": 1, "unknown": 1, "ranked": 2},  # today
]


def seed(site: Site) -> dict[str, int]:
    """Readers, a week of digests and a bounce; the ids of the readers by name."""
    names = ["ada", "bob", "carol", "dan", "erin", "frank", "grace", "heidi"]
    with site.db.session() as session:
        users = [
            UserRow(email=f"{n}@example.org", name=n.title(), status="active", created_at=NOW)
            for n in names
        ]
        session.add_all(users)
        session.flush()
        ids = {u.name or "": u.id for u in users}
        today = NOW.replace(hour=0, minute=10)
        for back, counts in enumerate(reversed(WEEK)):
            day = today - timedelta(days=back)
            for status, n in counts.items():
                for i in range(n):
                    session.add(digest(users[i % len(users)].id, status, day))
        session.add(
            ProviderEventRow(
                provider="sendgrid", event_id="bounce-1", email="heidi@example.org",
                kind="bounce", occurred_at=NOW, received_at=NOW,
                payload={"reason": "550 no such user"},
            )
        )  # fmt: skip
        arms = [{"name": "control", "allocation": 0.5}, {"name": "explore", "allocation": 0.5}]
        session.add(
            ExperimentRow(
                name="explore-2-slots", salt="s", created_at=NOW - timedelta(days=3), variants=arms
            )
        )
    guardrail = {"recall_at_20": 0.231, "active_recall_at_20": 0.224, "passed": True}
    manifest = {"created_at": NOW.isoformat(), "data": {"n_papers": 5210, "n_users": 8}}
    with site.db.session() as session:
        version = "20261121T020000-a1b2"
        host = Host(site.settings.data_dir / "trainer")
        publish_version(session, host, version, manifest | {"guardrail": guardrail})
        store.activate(session, version, NOW)
    return ids


def digest(user_id: int, status: str, when: Any) -> DigestRow:
    return DigestRow(
        user_id=user_id, period=uuid.uuid4().hex, status=status, created_at=when, updated_at=when
    )


@pytest.fixture()
def site(db: Database, settings: Settings) -> Iterator[Site]:
    """The API alone on a free port: no worker or beat, whose sweep would move the digests
    this page is asked to count."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    configured = settings.model_copy(update={"public_base_url": base_url})
    app = create_app(configured, clock=lambda: NOW)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until_up(base_url)
        yield Site(base_url, configured, db)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_log_in_see_the_counts_search_and_pause(site: Site, browser: Any) -> None:
    ids = seed(site)
    browser.set_window_size(1200, 1900)

    browser.get(f"{site.base_url}/admin")
    browser.find_element("id", "key").send_keys(KEY)
    submit(browser, "form[action='/admin/login'] button")

    assert browser.find_element("id", "today-total").text == str(sum(WEEK[-1].values()))
    assert browser.find_element("id", "week-total").text == str(
        sum(sum(day.values()) for day in WEEK)
    )
    assert browser.find_element("id", "bounces-week").text == "1"
    assert "recall_at_20" in browser.find_element("id", "guardrail").text
    assert "explore-2-slots" in browser.find_element("id", "experiment").text
    assert len(browser.find_elements("css selector", "svg.chart rect")) == sum(
        len([s for s in day if s != "ranked"]) + ("ranked" in day) for day in WEEK
    )
    save_screenshot(browser, "admin-1200.png")

    search = browser.find_element("id", "q")
    search.send_keys("bob")
    submit(browser, "form[action='/admin'] button")
    rows = browser.find_elements("css selector", "#subscribers tbody tr")
    assert [r.get_attribute("data-user") for r in rows] == [str(ids["Bob"])]

    submit(browser, f"tr[data-user='{ids['Bob']}'] form[action$='/pause'] button")
    assert f"Subscriber {ids['Bob']} is paused." in browser.page_source
    assert (
        browser.find_element("css selector", f"tr[data-user='{ids['Bob']}'] .status").text
        == "paused"
    )
    with site.db.session() as session:
        bob = session.get(UserRow, ids["Bob"])
        assert bob is not None and bob.status == "paused"

    browser.set_window_size(390, 2600)
    browser.get(f"{site.base_url}/admin")
    # On a phone the page fits the width: nothing scrolls sideways but the wide tables.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    save_screenshot(browser, "admin-390.png")


def submit(browser: Any, selector: str) -> None:
    """Press a button and wait until the next page has replaced this one."""
    page = browser.find_element("tag name", "html")
    browser.find_element("css selector", selector).click()
    wait = WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,))
    wait.until(staleness_of(page))
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


def save_screenshot(browser: Any, name: str) -> None:
    folder = screenshot_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(folder / name))
