"""Take the README's screenshots: a digest e-mail and the preferences page, in headless Chromium.

Run from the project root: ``python docs/screenshots/make.py``. It builds a throwaway
Paperboy in a temporary folder (the seed-paper dumps in ``../shared/data`` when present, else
a synthetic corpus), sends one subscriber a digest through the file backend, serves the API
and photographs the e-mail's HTML and the subscriber's preferences page.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from api.app import create_app
from api.demo import load_world
from recsys.catalog.papers import parse_files, upsert_papers
from recsys.catalog.sources.arxiv import parse_atom
from recsys.db.session import Database
from recsys.delivery import FileBackend
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.digests.sending import send_digest
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.subscribers.links import LinkMaker
from recsys.synth import generate_world
from recsys.testing.processes import free_port
from recsys.training.model import load_active_model
from recsys.training.nightly import train

HERE = Path(__file__).resolve().parent
SEED_PAPERS = HERE.parents[2] / "shared" / "data" / "seed-papers"
# A recorded arXiv API answer: ten real papers with ids, authors, categories and dates,
# which the seed dumps (title and abstract only) lack, so the e-mail shows every field.
FIXTURES = HERE.parents[1] / "tests" / "recsys" / "catalog" / "sources" / "fixtures"
ARXIV_ANSWER = FIXTURES / "arxiv-query-electron-proton.xml"
NOW = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
INTERESTS = [
    Interest("keyword", "electron proton scattering"),
    Interest("keyword", "proton radius"),
    Interest("text", "Elastic electron-proton scattering and the size of the proton"),
]
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--hide-scrollbars",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNG files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp), public_base_url=f"http://127.0.0.1:{port}", digest_size=5
        )
        digest_html, preferences_url = _send_one_digest(settings)
        with _served(settings, port), _chromium(Path(tmp) / "profile") as browser:
            # A phone (390 px, an iPhone's CSS width) and a desktop mail pane.
            for width in (390, 900):
                _shoot(browser, digest_html.as_uri(), args.out / f"digest-{width}.png", width=width)
            _shoot(browser, preferences_url, args.out / "preferences.png", width=900)
    print(f"wrote digest-390.png, digest-900.png and preferences.png to {args.out}")


def _send_one_digest(settings: Settings) -> tuple[Path, str]:
    """Corpus, subscriber, model, one digest sent to the outbox; its HTML and preferences URL."""
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        _load_corpus(session)
        ada = create_user(
            session, "ada@example.org", NOW, name="Ada", interests=INTERESTS, digest_size=5
        )
        train(session, settings, NOW)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    with db.session() as session:
        [digest_id] = plan_due(session, NOW)
        rank_digests(session, [digest_id], model, NOW, lookback=timedelta(days=7))
    send_digest(db, FileBackend(settings.outbox_dir), settings, digest_id, NOW)
    db.dispose()
    links = LinkMaker(settings.secret_key, settings.public_base_url, NOW + timedelta(days=60))
    html = settings.outbox_dir / f"digest-{digest_id}.html"
    return html, links.preferences(ada.id, ada.created_at)


def _load_corpus(session: Any) -> None:
    dumps = sorted(SEED_PAPERS.glob("*.txt"))
    if dumps:
        papers, errors = parse_files(dumps)
        assert not errors, errors
        upsert_papers(session, papers, NOW)
    else:
        load_world(session, generate_world(5, 300, seed=1, now=NOW), NOW)
    upsert_papers(session, parse_atom(ARXIV_ANSWER.read_text(encoding="utf-8"), "arxiv"), NOW)


@contextmanager
def _served(settings: Settings, port: int) -> Iterator[None]:
    app = create_app(settings, clock=lambda: NOW + timedelta(hours=1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        try:
            if httpx.get(f"{settings.public_base_url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _chromium(profile: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _shoot(browser: Any, url: str, path: Path, *, width: int) -> None:
    """A full-page screenshot: the window is grown to the page's height first."""
    browser.set_window_size(width, 800)
    browser.get(url)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(int(height) + 100, 6000))
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))


if __name__ == "__main__":
    main()
