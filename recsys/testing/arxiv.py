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

from xml.sax.saxutils import escape, quoteattr

from recsys.testing.http import Reply, StandIn

ATOM_TYPE = "application/atom+xml; charset=utf-8"


class FakeArxiv(StandIn):
    """The arXiv API, ``GET /api/query``, answering from a queue of replies.

    A request with no reply queued gets a 500 saying so, which makes a test that expects
    fewer requests fail loudly.
    """

    path = "/api/query"

    @property
    def queries(self) -> list[str]:
        """The received query strings, in order."""
        with self._lock:
            return [query for _, query in self.requests]

    def serve(self, *documents: str) -> None:
        """Queue 200 answers with these Atom documents, in order."""
        self.fail_next(*(Reply(200, d, {"Content-Type": ATOM_TYPE}) for d in documents))

    def answer_busy(self, retry_after: str | None = "5", status: int = 503) -> None:
        """Queue one busy answer, with ``Retry-After`` unless it is None."""
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        self.fail_next(Reply(status, "busy, try again later", headers))

    def answer(self, status: int, body: str, content_type: str = ATOM_TYPE) -> None:
        """Queue an arbitrary answer."""
        self.fail_next(Reply(status, body, {"Content-Type": content_type}))

    def respond(self, path: str, params: dict[str, str]) -> Reply:
        return Reply(500, "fake arXiv: no reply queued for this request")


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
