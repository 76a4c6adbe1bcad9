"""A stand-in for Sentry's ingest endpoint that keeps every envelope posted to it.

The SDK sends each event as an envelope (newline-separated JSON, often gzip- or
brotli-compressed) to ``/api/<project>/envelope/``; this server decompresses what it can
and keeps the text, so a test can look for what reached "Sentry" and what did not.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class SentryStandIn:
    """A threaded HTTP server on 127.0.0.1 recording the envelopes posted to it."""

    def __init__(self) -> None:
        self.envelopes: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.stand_in = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def dsn(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://public-key@{host!s}:{port}/1"

    def record(self, body: bytes, encoding: str) -> None:
        text = _decoded(body, encoding)
        with self._lock:
            self.envelopes.append(text)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.envelopes)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _decoded(body: bytes, encoding: str) -> str:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding == "br":
        import brotli  # only when the SDK found it installed, so it is there

        body = brotli.decompress(body)
    return body.decode("utf-8", "replace")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.stand_in.record(body, self.headers.get("Content-Encoding", ""))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass
