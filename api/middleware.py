"""What every response carries, and how much of a request body any route will read.

Security headers are added by one pure ASGI middleware, so no route can forget them (a route
that sets one itself keeps its own value). Body sizes are capped by Starlette's own limiter,
which FastAPI exposes as ``max_body_size`` on the app and on each route: it refuses a
``Content-Length`` over the cap with 413 and, for a chunked body, stops reading and answers
413 as soon as the bytes received pass it, so a huge upload is never held in memory.
Answers to forms that take an e-mail address go out no sooner than a fixed time after the
request came (:class:`EvenTiming`), so their timing does not tell who has an account.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys import logs

# Body caps in bytes. Routes not named here take the app's default: their bodies are a
# few fields (admin JSON, one-click unsubscribe, pause, delete).
DEFAULT_MAX_BODY = 64 * 1024
# A pasted library is at most 2,000,000 characters (api.schemas.MAX_LIBRARY_CHARS); JSON
# escapes can take four bytes a character. (Forms: api.forms.MAX_FORM_BYTES; the webhook:
# api.routes.webhooks.MAX_BODY_BYTES.)
JSON_LIBRARY_MAX_BODY = 8 * 1024 * 1024


def content_security_policy(style_hashes: list[str]) -> str:
    """A policy that lets a page load nothing but its own inline style block.

    No script at all (the pages need none), no frames, forms post only here, and no
    ``<base>`` tag can redirect relative links: a stored title that slipped past escaping
    still could not run, load or send anything.
    """
    styles = " ".join(f"'sha256-{digest}'" for digest in style_hashes) or "'none'"
    return (
        "default-src 'none'; "
        f"style-src {styles}; "
        "img-src 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    """The headers every response gets, as ASGI header pairs."""
    headers = {
        "content-security-policy": csp,
        "x-frame-options": "DENY",  # the pages hold account tokens: never inside a frame
        "referrer-policy": "no-referrer",  # nor in a Referer header sent to a paper's site
        "x-content-type-options": "nosniff",
    }
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class SecurityHeaders:
    """Pure ASGI middleware adding :func:`security_headers` to every HTTP response."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = security_headers(csp)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# The forms that take an e-mail address: a new address costs more work than a known one
# (rows, seeds, a rate-limit count), which their answer time would otherwise tell.
ADDRESS_FORMS = frozenset({"/signup", "/subscriptions", "/preferences-link"})


class EvenTiming:
    """Pure ASGI middleware holding back the answer to a POST on ``paths`` until ``floor_s``
    after the request arrived, whatever happened in between.

    The wait is taken just before the response starts, so it covers the route, the commit
    and any error answer; background tasks (the confirmation e-mail) run after it. A request
    whose work takes longer than ``floor_s`` (a sign-up with a huge library) answers late
    and its timing is not evened: keep ``floor_s`` above what an ordinary sign-up takes.

    Parameters
    ----------
    app : ASGIApp
        The application to wrap.
    paths : collection of str
        Exact paths whose POST answers are evened.
    floor_s : float
        Seconds from arrival before the answer may start; 0 turns it off.
    clock, sleep
        ``time.monotonic`` and ``asyncio.sleep``; replaced in tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        paths: Collection[str],
        floor_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.app, self.paths, self.floor_s = app, frozenset(paths), floor_s
        self.clock, self.sleep = clock, sleep

    def _evens(self, scope: Scope) -> bool:
        return (
            self.floor_s > 0
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.paths
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._evens(scope):
            await self.app(scope, receive, send)
            return
        started = self.clock()

        async def send_on_time(message: Message) -> None:
            if message["type"] == "http.response.start":
                wait = self.floor_s - (self.clock() - started)
                if wait > 0:
                    await self.sleep(wait)
            await send(message)

        await self.app(scope, receive, send_on_time)


# A caller's (a proxy's) request id is kept only when it is short and plain: it is written
# into every log line of the request and echoed in a header.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's ``X-Request-ID`` when it is well formed, else a new random one."""
    for name, value in headers:
        if name.lower() == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            return value.decode()
    return uuid.uuid4().hex


class RequestId:
    """Pure ASGI middleware: a request id on every log line of a request and in its response.

    The id is set in the request's context and not reset: uvicorn writes the access line and
    an unhandled exception's traceback in the same asyncio task once the app has returned,
    and each request runs in a task of its own, so the id ends with the request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope.get("headers", []))
        logs.set_context(request_id=rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
