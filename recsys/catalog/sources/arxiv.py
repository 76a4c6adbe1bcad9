"""arXiv: the Atom feed parser and the one HTTP client that talks to the arXiv API.

arXiv asks API users for no more than one request every three seconds and answers 503
(or 429) with ``Retry-After`` when pushed; :class:`ArxivClient` keeps to both, with the
clock and sleep injected so tests check the waiting without doing it.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import TracebackType

import httpx

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi
from recsys.catalog.sources.record import Warn, paper_from_fields
from recsys.domain import IngestError, Paper

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
DEFAULT_BASE_URL = "https://export.arxiv.org/api/query"
USER_AGENT = "paperboy/0.1 (research-paper digest; arXiv API client)"
# arXiv returns at most 2,000 entries per request.
MAX_PAGE_SIZE = 2000
_API_ERROR_ID = re.compile(r"https?://arxiv\.org/api/errors")
_RETRY_STATUSES = frozenset({429, 503})


# --- Atom parsing ---------------------------------------------------------------------


def parse_atom(text: str, source: str, *, warn: Warn | None = None) -> list[Paper]:
    """Parse an arXiv API Atom feed.

    Parameters
    ----------
    text : str
        The feed document.
    source : str
        Where it came from (file path or request URL), for papers and errors.
    warn : callable, optional
        Receives each dropped value (see :func:`~recsys.catalog.sources.record.paper_from_fields`).

    Returns
    -------
    list of Paper
        One per ``<entry>``: arXiv id without version (also the ``external_id``), title
        and summary with whitespace collapsed, authors, category terms, published time,
        the ``rel="alternate"`` link (else ``https://arxiv.org/abs/<id>``) and
        ``arxiv:doi``. ``line`` is the line the entry starts on.

    Raises
    ------
    IngestError
        At the parser's line for malformed XML; at the entry's line for an arXiv API error
        entry (carrying arXiv's message), an entry without an arXiv id or title, elements
        nested too deeply, or a bad field (as in JSON Lines, e.g. ``published``).
    """
    root, lines = _parse_xml(text, source)
    if root.tag != f"{ATOM}feed":
        tag = root.tag[:100]
        raise IngestError(source, lines.get(root, 1), f"expected an Atom <feed>, found {tag}")
    return [
        _checked_entry(entry, source, lines.get(entry, 0), warn)
        for entry in root.iter(f"{ATOM}entry")
    ]


def _checked_entry(entry: ET.Element, source: str, line: int, warn: Warn | None) -> Paper:
    try:
        return _entry(entry, source, line, warn)
    except RecursionError:
        # itertext() recurses once per nesting level; a hostile feed can nest thousands.
        raise IngestError(source, line, "entry has elements nested too deeply") from None


def _parse_xml(text: str, source: str) -> tuple[ET.Element, dict[ET.Element, int]]:
    """The document root, and the line each element starts on.

    ElementTree keeps no line numbers, so the text is fed one line at a time and each
    element is tagged with the line being fed when its start tag was reported.
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start",))
    lines: dict[ET.Element, int] = {}
    try:
        for number, chunk in enumerate(text.split("\n"), start=1):
            parser.feed(chunk + "\n")
            for event in parser.read_events():
                if isinstance(event[-1], ET.Element):
                    lines[event[-1]] = number
        parser.close()
    except ET.ParseError as exc:
        raise IngestError(source, exc.position[0], f"malformed XML: {exc}") from None
    return next(iter(lines)), lines


def _entry(entry: ET.Element, source: str, line: int, warn: Warn | None) -> Paper:
    raw_id = _text(entry, f"{ATOM}id")
    if _API_ERROR_ID.match(raw_id):
        summary = _text(entry, f"{ATOM}summary") or raw_id
        raise IngestError(source, line, f"arXiv API error: {summary}")
    arxiv_id = normalise_arxiv_id(raw_id)
    if arxiv_id is None:
        raise IngestError(source, line, f"entry <id> {raw_id[:100]!r} is not an arXiv abs URL")
    if not _text(entry, f"{ATOM}title"):
        raise IngestError(source, line, f"entry {arxiv_id} has no <title>")
    fields = {
        "id": arxiv_id,
        "title": _text(entry, f"{ATOM}title"),
        "abstract": _text(entry, f"{ATOM}summary"),
        "authors": [_text(author, f"{ATOM}name") for author in entry.iter(f"{ATOM}author")],
        "categories": _categories(entry),
        "published": _text(entry, f"{ATOM}published") or None,
        "url": _alternate_link(entry),
        "doi": _first_doi(_text(entry, f"{ARXIV}doi")),
    }
    paper = paper_from_fields(fields, source, line, require_id=True, warn=warn)
    return paper if paper.url else replace(paper, url=f"https://arxiv.org/abs/{arxiv_id}")


def _first_doi(value: str) -> str | None:
    # arXiv writes whatever the authors typed, sometimes several DOIs or a bare word; the
    # first one that is a DOI is kept rather than refusing the whole feed over it.
    return next((doi for word in value.split() if (doi := normalise_doi(word))), None)


def _text(parent: ET.Element, tag: str) -> str:
    """The text of ``parent``'s first ``tag`` child, whitespace collapsed; "" if none."""
    child = parent.find(tag)
    return "" if child is None else " ".join("".join(child.itertext()).split())


def _categories(entry: ET.Element) -> list[str]:
    terms = (category.get("term", "").strip() for category in entry.iter(f"{ATOM}category"))
    return list(dict.fromkeys(term for term in terms if term))


def _alternate_link(entry: ET.Element) -> str | None:
    for link in entry.iter(f"{ATOM}link"):
        if link.get("rel") == "alternate" and link.get("href"):
            return link.get("href")
    return None


# --- HTTP client ----------------------------------------------------------------------


class ArxivError(RuntimeError):
    """arXiv did not answer usefully.

    ``transient`` says whether trying again later may work (busy, unreachable) or not
    (the query was rejected); ``retry_after_s`` is arXiv's own hint when it gave one.
    """

    def __init__(self, message: str, *, transient: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after_s = retry_after_s


class ArxivClient:
    """A polite client for the arXiv API query endpoint.

    Parameters
    ----------
    base_url : str
        The query endpoint.
    min_interval_s : float
        Least time between the starts of two requests (arXiv asks for 3 s).
    timeout_s : float
        Per-request timeout.
    http : httpx.Client, optional
        Client to use; by default one is created (and closed by :meth:`close`).
    clock, sleep : callables
        Monotonic clock and sleep, injected so tests can check the waiting.
    max_retries : int
        How many times a 429/503 answer is retried before giving up.
    max_retry_wait_s : float
        Longest ``Retry-After`` honoured by sleeping; a longer one raises a transient
        :class:`ArxivError` so the caller can reschedule instead of blocking.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        min_interval_s: float = 3.0,
        timeout_s: float = 30.0,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_retries: int = 3,
        max_retry_wait_s: float = 120.0,
    ) -> None:
        if min_interval_s < 0 or timeout_s <= 0 or max_retries < 0:
            raise ValueError("min_interval_s >= 0, timeout_s > 0 and max_retries >= 0 needed")
        self._base_url = base_url
        self._min_interval_s = min_interval_s
        self._timeout_s = timeout_s
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout_s, headers={"User-Agent": USER_AGENT})
        self._clock = clock
        self._sleep = sleep
        self._max_retries = max_retries
        self._max_retry_wait_s = max_retry_wait_s
        self._last_request_at: float | None = None
        self._not_before = -math.inf

    def __enter__(self) -> ArxivClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def search(self, query: str, start: int = 0, max_results: int = 100) -> list[Paper]:
        """One page of results for an arXiv ``search_query``.

        Parameters
        ----------
        query : str
            arXiv query syntax, e.g. ``"cat:cs.LG AND ti:diffusion"``.
        start, max_results : int
            Offset and page size (at most 2,000).

        Raises
        ------
        ArxivError
            When arXiv stays busy, cannot be reached, or rejects the request.
        IngestError
            When the answer is not a valid feed or is an arXiv API error feed.
        """
        _check_page(start, max_results)
        return self._query({"search_query": query, "start": start, "max_results": max_results})

    def iter_recent(
        self, categories: list[str], max_results: int, page_size: int = 100
    ) -> Iterator[Paper]:
        """The newest papers in ``categories``, newest first, fetched page by page.

        Stops after ``max_results`` papers or when arXiv runs out.

        Raises
        ------
        ValueError
            At call time, for no categories or a bad ``max_results`` / ``page_size``.
        ArxivError, IngestError
            While iterating, as in :meth:`search`.
        """
        if not categories:
            raise ValueError("iter_recent needs at least one category, e.g. ['cs.LG']")
        _check_page(0, page_size)
        if max_results < 0:
            raise ValueError(f"max_results must be >= 0, got {max_results}")
        query = " OR ".join(f"cat:{category}" for category in categories)
        return self._recent_pages(query, max_results, page_size)

    def iter_newest(self, query: str, max_results: int, page_size: int = 100) -> Iterator[Paper]:
        """Papers matching an arXiv ``search_query``, newest submission first, page by page.

        Stops after ``max_results`` papers or when arXiv runs out; used by harvesting, which
        also stops once it reaches papers older than its watermark.

        Raises
        ------
        ValueError
            At call time, for an empty query or a bad ``max_results`` / ``page_size``.
        ArxivError, IngestError
            While iterating, as in :meth:`search`.
        """
        if not query.strip():
            raise ValueError("iter_newest needs a search_query, e.g. 'cat:cs.LG'")
        _check_page(0, page_size)
        if max_results < 0:
            raise ValueError(f"max_results must be >= 0, got {max_results}")
        return self._recent_pages(query, max_results, page_size)

    def _recent_pages(self, query: str, max_results: int, page_size: int) -> Iterator[Paper]:
        start = 0
        while start < max_results:
            size = min(page_size, max_results - start)
            params = {"search_query": query, "sortBy": "submittedDate", "sortOrder": "descending"}
            page = self._query({**params, "start": start, "max_results": size})
            yield from page
            if len(page) < size:
                return  # a short page is the last one
            start += size

    def _query(self, params: dict[str, str | int]) -> list[Paper]:
        response = self._get(params)
        return parse_atom(response.text, str(response.url))

    def _get(self, params: dict[str, str | int]) -> httpx.Response:
        """GET with the rate limit kept and 429/503 retried; raise on any other failure."""
        for attempt in range(self._max_retries + 1):
            self._wait_turn()
            response = self._send(params)
            if response.status_code not in _RETRY_STATUSES:
                return _checked(response)
            if attempt < self._max_retries:
                self._back_off(response, attempt)
        raise ArxivError(
            f"arXiv still answers {response.status_code} after {self._max_retries + 1} "
            f"attempts ({response.url}); try again later",
            transient=True,
            retry_after_s=_retry_after(response),
        )

    def _wait_turn(self) -> None:
        """Sleep until both the rate limit and any Retry-After allow the next request."""
        due = self._not_before
        if self._last_request_at is not None:
            due = max(due, self._last_request_at + self._min_interval_s)
        wait = due - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._last_request_at = self._clock()

    def _back_off(self, response: httpx.Response, attempt: int) -> None:
        # Without a usable Retry-After, back off exponentially from the polite interval.
        wait = _retry_after(response)
        if wait is None:
            wait = max(self._min_interval_s, 1.0) * 2 ** (attempt + 1)
        if wait > self._max_retry_wait_s:
            raise ArxivError(
                f"arXiv is busy ({response.status_code}) and asks to wait {wait:.0f} s; "
                "try again later",
                transient=True,
                retry_after_s=wait,
            )
        self._not_before = self._clock() + wait

    def _send(self, params: dict[str, str | int]) -> httpx.Response:
        try:
            return self._http.get(self._base_url, params=params, timeout=self._timeout_s)
        except httpx.TimeoutException:
            message = f"arXiv did not answer within {self._timeout_s:g} s ({self._base_url})"
            raise ArxivError(message, transient=True) from None
        except httpx.TransportError as exc:
            message = f"cannot reach arXiv at {self._base_url}: {exc}"
            raise ArxivError(message, transient=True) from exc


def _check_page(start: int, size: int) -> None:
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page size must be between 1 and {MAX_PAGE_SIZE}, got {size}")


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; None when absent or an HTTP date (needs a wall clock)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise ArxivError(
        f"arXiv answered {response.status_code} for {response.url}: {_error_detail(response)}",
        transient=response.status_code >= 500,
    )


def _error_detail(response: httpx.Response) -> str:
    """arXiv's own message when the body is an API error feed, else the body's start."""
    # arXiv explains rejected queries (HTTP 400) in an Atom error feed.
    try:
        parse_atom(response.text, str(response.url))
    except IngestError as exc:
        if exc.reason.startswith("arXiv API error"):
            return exc.reason
    return " ".join(response.text.split())[:200] or "(empty body)"
