"""API fixtures: the app on the real test database, an HTTP client, and a few personas.

Alice is an active subscriber who got one digest holding the paper "Attention Is All You
Need"; ``links`` signs her e-mail links the way the sender does. Tasks the API enqueues are
recorded in ``tasks`` instead of going to a broker; tests run them themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from recsys.db.models import DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.subscribers.links import LinkMaker
from tests.conftest import NOW


class Tasks(list[tuple[str, list[Any]]]):
    """The tasks the API enqueued, in order."""

    def __call__(self, task: str, args: list[Any]) -> None:
        self.append((task, args))


@pytest.fixture()
def tasks() -> Tasks:
    return Tasks()


@pytest.fixture()
def app(db: Database, settings: Settings, tasks: Tasks) -> FastAPI:
    return create_app(settings, clock=lambda: NOW, enqueue=tasks)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    # Redirects are asserted, not followed: they point outside the app.
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture()
def admin(settings: Settings) -> dict[str, str]:
    assert settings.admin_api_key
    return {"X-API-Key": settings.admin_api_key}


def add_paper(
    db: Database, title: str, created_at: datetime = NOW, url: str | None = None
) -> PaperRow:
    """Store one paper directly, as ingestion would."""
    slug = title.lower().replace(" ", "-")
    row = PaperRow(
        title=title,
        title_key=slug,
        abstract=f"About {title}.",
        authors=["A. Author"],
        categories=["cs.LG"],
        url=url or f"https://papers.example.org/{slug}",
        created_at=created_at,
        updated_at=created_at,
    )
    with db.session() as session:
        session.add(row)
    return row


@pytest.fixture()
def paper(db: Database) -> PaperRow:
    return add_paper(db, "Attention Is All You Need")


@pytest.fixture()
def alice(db: Database) -> UserRow:
    with db.session() as session:
        return create_user(
            session, "alice@example.org", NOW, name="Alice", interests=[Interest("keyword", "nlp")]
        )


@pytest.fixture()
def digest(db: Database, alice: UserRow, paper: PaperRow) -> DigestRow:
    row = DigestRow(
        user_id=alice.id, period="2026-11-21", status="sent", created_at=NOW, updated_at=NOW
    )
    with db.session() as session:
        session.add(row)
    return row


@pytest.fixture()
def links(settings: Settings) -> LinkMaker:
    return LinkMaker(settings.secret_key, settings.public_base_url, NOW + timedelta(days=60))


def path_of(url: str) -> str:
    """The path of a link from an e-mail, to request from the test client."""
    return urlsplit(url).path


def stored_events(db: Database) -> list[EventRow]:
    with db.session() as session:
        return list(session.scalars(select(EventRow).order_by(EventRow.id)))


def stored_user(db: Database, user_id: int) -> UserRow:
    with db.session() as session:
        user = session.get(UserRow, user_id)
        assert user is not None
        return user
