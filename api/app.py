"""The FastAPI application: JSON API, tracked e-mail links and their small HTML pages.

``create_app`` builds an app around one ``Database``; it runs no migrations (the CLI's
prestart step does). Serve it with ``uvicorn --factory api.app:asgi``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from api import pages
from api.deps import ActiveModel, CeleryEnqueue, Enqueue
from api.routes import api_router
from recsys.db.session import Database
from recsys.settings import Settings, get_settings


def utc_now() -> datetime:
    """The wall clock, as an aware UTC datetime."""
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    enqueue: Enqueue | None = None,
) -> FastAPI:
    """Build the app; ``clock`` replaces the wall clock (tests pass a fixed ``now``) and
    ``enqueue`` the workers' broker (tests record the tasks and run them themselves)."""
    settings = settings or get_settings()
    database = Database(settings.sqlalchemy_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        database.dispose()

    app = FastAPI(
        title="Paperboy", summary="Personalised research-paper digests", lifespan=lifespan
    )
    app.state.settings = settings
    app.state.database = database
    app.state.clock = clock or utc_now
    app.state.enqueue = CeleryEnqueue(settings) if enqueue is None else enqueue
    app.state.model = ActiveModel(settings)
    app.add_exception_handler(pages.PageError, pages.page_error_handler)
    app.add_exception_handler(pages.FormInvalid, pages.form_invalid_handler)
    app.include_router(api_router)
    return app


def asgi() -> FastAPI:
    """The app configured from the environment, for ``uvicorn --factory api.app:asgi``."""
    return create_app()
