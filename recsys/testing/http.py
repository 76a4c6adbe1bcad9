"""The HTTP server every stand-in for an outside paper source is built on.

A threaded server on 127.0.0.1 and a free port, in the test's own process: the code under
test talks to it over a real socket, exactly as to the real service. Each stand-in answers
from its corpus; queued replies (busy, broken, errors) are served first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """A threaded HTTP server on 127.0.0.1 answering GETs with :meth:`answer`.

    Subclasses answer from their corpus (:meth:`respond`); :meth:`fail_next` queues
    replies served first.
    """

    path = "/"

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, query string)
        self._faults: deque[Reply] = deque()
        self._traps: list[tuple[Callable[[dict[str, str]], bool], Reply]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stand_in = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def fail_next(self, *replies: Reply) -> None:
        """Serve these replies, in order, before any normal answer."""
        with self._lock:
            self._faults.extend(replies)

    def fail_once(self, reply: Reply, when: Callable[[dict[str, str]], bool]) -> None:
        """Serve ``reply`` instead of the answer to the first request ``when`` accepts
        (given the request's parameters), e.g. the first resumption request."""
        with self._lock:
            self._traps.append((when, reply))

    def params(self) -> list[dict[str, str]]:
        """The received query strings, parsed (one value per name)."""
        with self._lock:
            queries = [query for _, query in self.requests]
        return [{k: v[0] for k, v in parse_qs(q).items()} for q in queries]

    def paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def reply(self, path: str, query: str) -> Reply:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        with self._lock:
            self.requests.append((path, query))
            if self._faults:
                return self._faults.popleft()
            for number, (when, trap) in enumerate(self._traps):
                if when(params):
                    del self._traps[number]
                    return trap
        return self.respond(path, params)

    def respond(self, path: str, params: dict[str, str]) -> Reply:
        """The normal answer to a request; subclasses answer from their corpus."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stand_in: StandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        parts = urlsplit(self.path)
        reply = self.server.stand_in.reply(parts.path, parts.query)
        body = reply.body.encode("utf-8")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request logs on stderr would clutter test output."""
