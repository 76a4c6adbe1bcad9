"""A stand-in for the arXiv API over real HTTP, on 127.0.0.1 with a free port.

Tests queue the answers (Atom documents they write, or a busy 503) and read back the
query strings the client sent::

    with FakeArxiv() as arxiv:
        arxiv.answer_busy(retry_after="7")
        arxiv.serve(atom_feed(atom_entry("2401.00001", "A title")))
        client = ArxivClient(base_url=arxiv.base_url, ...)
        ...
        assert arxiv.params()[0]["start"] == "0"
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

ATOM_TYPE = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One queued HTTP answer."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class FakeArxiv:
    """Threaded HTTP server answering ``GET /api/query`` from a queue of replies.

    A request with no reply queued gets a 500 saying so, which makes a test that expects
    fewer requests fail loudly.
    """

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/query"

    def serve(self, *documents: str) -> None:
        """Queue 200 answers with these Atom documents, in order."""
        for document in documents:
            self._queue(Reply(200, document, {"Content-Type": ATOM_TYPE}))

    def answer_busy(self, retry_after: str | None = "5", status: int = 503) -> None:
        """Queue one busy answer, with ``Retry-After`` unless it is None."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        self._queue(Reply(status, "busy, try again later", headers))

    def answer(self, status: int, body: str, content_type: str = ATOM_TYPE) -> None:
        """Queue an arbitrary answer."""
        self._queue(Reply(status, body, {"Content-Type": content_type}))

    def params(self) -> list[dict[str, str]]:
        """The received query strings, parsed (one value per name)."""
        with self._lock:
            queries = list(self.queries)
        return [{k: v[0] for k, v in parse_qs(q).items()} for q in queries]

    def next_reply(self, query: str) -> Reply:
        with self._lock:
            self.queries.append(query)
            if self._replies:
                return self._replies.popleft()
        return Reply(500, "fake arXiv: no reply queued for this request")

    def _queue(self, reply: Reply) -> None:
        with self._lock:
            self._replies.append(reply)

    def __enter__(self) -> FakeArxiv:
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
    fake: FakeArxiv


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        reply = self.server.fake.next_reply(urlsplit(self.path).query)
        body = reply.body.encode("utf-8")
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request logs on stderr would clutter test output."""


def atom_entry(
    arxiv_id: str,
    title: str,
    summary: str = "An abstract.",
    *,
    authors: tuple[str, ...] = ("Ada Lovelace",),
    categories: tuple[str, ...] = ("cs.LG",),
    published: str = "2024-01-02T18:00:00Z",
    doi: str | None = None,
    version: int = 1,
) -> str:
    """One arXiv-style ``<entry>`` element."""
    url = f"http://arxiv.org/abs/{arxiv_id}v{version}"
    parts = [
        f"<id>{escape(url)}</id>",
        f"<published>{escape(published)}</published>",
        f"<title>{escape(title)}</title>",
        f"<summary>{escape(summary)}</summary>",
        *(f"<author><name>{escape(name)}</name></author>" for name in authors),
        *(f"<category term={quoteattr(term)} />" for term in categories),
        f'<link href={quoteattr(url)} rel="alternate" type="text/html"/>',
    ]
    if doi:
        parts.append(f"<arxiv:doi>{escape(doi)}</arxiv:doi>")
    return "<entry>\n    " + "\n    ".join(parts) + "\n  </entry>"


def atom_feed(*entries: str) -> str:
    """A feed document around ``entries``, as the arXiv API sends it."""
    body = "\n  ".join(entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">\n'
        "  <title>arXiv Query</title>\n"
        f"  <opensearch:totalResults>{len(entries)}</opensearch:totalResults>\n"
        f"  {body}\n"
        "</feed>\n"
    )


def atom_error_feed(message: str) -> str:
    """The feed arXiv sends for a rejected query: one entry under ``/api/errors``."""
    error_id = "http://arxiv.org/api/errors#" + message.replace(" ", "_")
    entry = (
        "<entry>\n"
        f"    <id>{escape(error_id)}</id>\n"
        "    <title>Error</title>\n"
        f"    <summary>{escape(message)}</summary>\n"
        "    <author><name>arXiv api core</name></author>\n"
        "  </entry>"
    )
    return atom_feed(entry)
