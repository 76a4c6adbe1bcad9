"""A subscriber's whole journey in headless Chromium: sign up, confirm from the e-mail, edit
interests and see the next-digest preview follow, then unsubscribe."""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from recsys.db.models import UserRow
from recsys.delivery.backends import confirmation_outbox_key as outbox_key
from recsys.training.nightly import train
from tests.browser.conftest import Site, screenshot_dir
from tests.conftest import NOW
from tests.recsys import world

pytestmark = pytest.mark.integration
EMAIL = "grace@example.org"


def test_sign_up_confirm_edit_interests_and_unsubscribe(site: Site, browser: Any) -> None:
    with site.db.session() as session:  # two topics, vision and audio, and a trained model
        world.load(session)
        train(session, site.settings, NOW)

    browser.get(f"{site.base_url}/signup")
    browser.find_element("id", "email").send_keys(EMAIL)
    browser.find_element("id", "keywords").send_keys("speech recognition")
    submit(browser, "sign-up")
    assert "Check your inbox" in browser.find_element("tag name", "h1").text

    browser.get(confirm_url(wait_for_confirmation(site)))
    assert status_of(site) == "pending"  # opening the link changes nothing
    submit(browser, "confirm")
    assert "Your subscription is confirmed" in browser.page_source
    assert status_of(site) == "active"
    # The relevance bar keeps the new audio papers that share no word with "speech
    # recognition" (the two on music) out of the preview; the speech ones lead it.
    speech = {t for t in world.AUDIO[2:] if "speech" in t}
    assert set(preview_titles(browser)) == speech, preview_titles(browser)
    save_screenshot(browser, "preferences.png")

    keywords = browser.find_element("id", "keywords")
    keywords.clear()
    keywords.send_keys("image segmentation")
    submit(browser, "save")
    assert "Saved." in browser.page_source
    shown = preview_titles(browser)
    assert shown and set(shown) <= set(world.VISION[2:]), shown  # only the new vision papers
    assert "Why: Matches your interest “image segmentation”" in browser.page_source

    submit(browser, "unsubscribe")
    assert browser.find_element("tag name", "h1").text == "Unsubscribed"
    assert status_of(site) == "unsubscribed"


def submit(browser: Any, button_id: str) -> None:
    """Press a form's button and wait until the next page has replaced this one."""
    page = browser.find_element("tag name", "html")
    browser.find_element("id", button_id).click()
    # ChromeDriver can answer "unhandled inspector error" while the old page is torn down;
    # that is the navigation in progress, so keep polling instead of failing.
    wait = WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,))
    wait.until(staleness_of(page))
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete")


def wait_for_confirmation(site: Site, timeout_s: float = 30.0) -> Path:
    """The confirmation e-mail the worker writes to the outbox."""
    with site.db.session() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.email == EMAIL))
    assert user_id is not None
    eml = site.settings.outbox_dir / f"digest-{outbox_key(user_id)}.eml"
    deadline = time.monotonic() + timeout_s
    while not eml.exists():
        assert time.monotonic() < deadline, f"no confirmation e-mail at {eml} after {timeout_s} s"
        time.sleep(0.1)
    return eml


def confirm_url(eml: Path) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    match = re.search(r"https?://\S+/confirm/\S+", text.get_content())
    assert match is not None
    return match[0]


def status_of(site: Site) -> str | None:
    with site.db.session() as session:
        return session.scalar(select(UserRow.status).where(UserRow.email == EMAIL))


def preview_titles(browser: Any) -> list[str]:
    items = browser.find_elements("css selector", "#preview + ol.papers li > a")
    return [item.text for item in items]


def save_screenshot(browser: Any, name: str) -> None:
    folder = screenshot_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(folder / name))
