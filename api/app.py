"""The FastAPI application: JSON API, tracked e-mail links and their small HTML pages.

``create_app`` builds an app around one ``Database``; it runs no migrations (the CLI's
prestart step does). Serve it with :func:`serve` (``paperboy serve``), or with
``uvicorn --factory api.app:asgi`` in a single process.
"""

from __future__ import annotations

import gc
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from api import metrics, openapi, pages
from api.deps import ActiveModel, CeleryEnqueue, Enqueue
from api.middleware import (
    ADDRESS_FORMS,
    DEFAULT_MAX_BODY,
    EvenTiming,
    RequestId,
    SecurityHeaders,
    content_security_policy,
)
from api.ratelimit import SignUpLimits
from api.routes import api_router
from recsys.db.session import Database
from recsys.logs import LogFormat, logging_config
from recsys.sentry import init_sentry
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
    init_sentry(settings, "api")  # does nothing unless PAPERBOY_SENTRY_DSN is set
    database = Database(settings.sqlalchemy_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The app and its imports are a quarter of a million objects that live as long as
        # the process; a full garbage collection walked them all, 130 ms in which the worker
        # answered nothing (the slowest clicks under load). Frozen, collections skip them.
        gc.freeze()
        yield
        if database.loop_writes is not None:
            await database.loop_writes.close()
        database.dispose()

    # FastAPI's own /docs and /redoc load script from a CDN; api.routes.docs serves a
    # plain page instead. Routes with larger bodies raise max_body_size for themselves.
    app = PaperboyApp(
        title="Paperboy",
        summary="Personalised research-paper digests",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        max_body_size=DEFAULT_MAX_BODY,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.clock = clock or utc_now
    app.state.enqueue = CeleryEnqueue(settings) if enqueue is None else enqueue
    app.state.model = ActiveModel(settings)
    app.state.signup_limits = SignUpLimits(settings)
    app.state.metrics = metrics.registry(settings, database, app.state.clock)
    app.add_exception_handler(pages.PageError, pages.page_error_handler)
    app.add_exception_handler(pages.FormInvalid, pages.form_invalid_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, openapi.http_error_handler)
    app.include_router(api_router)
    openapi.install(app)
    return app


class PaperboyApp(FastAPI):
    """FastAPI with :class:`~api.middleware.SecurityHeaders` and
    :class:`~api.middleware.RequestId` around everything, and
    :class:`~api.middleware.EvenTiming` around the forms that take an e-mail address.

    Added as user middleware it would sit inside FastAPI's own outer layers, so the 413 of
    the body limiter and a 500 from the error handler would go out without the headers.
    """

    def build_middleware_stack(self) -> ASGIApp:
        csp = content_security_policy(pages.style_hashes())
        floor_s = self.state.settings.signup_answer_s
        evened = EvenTiming(super().build_middleware_stack(), ADDRESS_FORMS, floor_s)
        return RequestId(SecurityHeaders(evened, csp=csp))


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped, so any Python str can be sent."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, written so that it cannot fail.

    The body echoes the input it refused; FastAPI writes it as UTF-8, which a lone
    surrogate from a JSON escape ("\ud800") cannot be: the 422 became a 500.
    """
    assert isinstance(exc, RequestValidationError)
    detail = jsonable_encoder(exc.errors())
    return AsciiJSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


def asgi() -> FastAPI:
    """The app configured from the environment, for ``uvicorn --factory api.app:asgi``."""
    return create_app()


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A bound, listening TCP socket whose accepted connections have ``TCP_NODELAY``.

    uvicorn's multi-worker mode binds its own socket without naming the TCP protocol, so
    asyncio does not set ``TCP_NODELAY`` on the connections it accepts. A response written
    as headers, then body, then waits for the client's delayed ACK: 40 ms on every request,
    about 360 requests/s in all. Linux copies the option from the listening socket to each
    accepted one, so it is set here once.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)  # the worker processes accept on it
    return sock


def serve(
    host: str,
    port: int,
    *,
    workers: int = 1,
    access_log: bool = True,
    log_level: str = "INFO",
    log_format: LogFormat = "text",
) -> None:
    """Serve the app from the environment's settings with ``workers`` uvicorn processes.

    Call it from a ``__main__`` guard: uvicorn starts its workers by re-importing the main
    module.
    """
    import uvicorn

    sock = listening_socket(host, port)
    uvicorn.run(
        "api.app:asgi",
        factory=True,
        fd=sock.fileno(),
        workers=workers,
        access_log=access_log,
        log_level=log_level.lower(),
        log_config=logging_config(log_level, log_format),  # and no token reaches a log line
    )
