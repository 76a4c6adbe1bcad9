"""The one module that talks HTTP to outside paper sources while harvesting.

:class:`SourceHttp` is a polite GET for one source: a timeout on every request, a least
interval between requests, and retries of what may pass (timeouts, connection failures,
429 and 5xx, honouring ``Retry-After``) with exponential backoff. The fetch loops below
turn a source's answers into :class:`~recsys.catalog.sources.pages.Page` objects with the
pure parsers, page by page, following the source's own paging. The arXiv API goes through
the existing :class:`~recsys.catalog.sources.arxiv.ArxivClient`, handed this module's
HTTP client. Every failure is a :class:`HarvestError` naming the source, the request and
the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from types import TracebackType
from urllib.parse import urlencode

import httpx

from recsys.catalog.harvest.config import (
    ArxivApiSource,
    ArxivOaiSource,
    BiorxivSource,
    RssSource,
    SourceConfig,
)
from recsys.catalog.sources.arxiv import ArxivClient, ArxivError
from recsys.catalog.sources.biorxiv import parse_details
from recsys.catalog.sources.feeds import parse_feed
from recsys.catalog.sources.oai import parse_list_records
from recsys.catalog.sources.pages import Page
from recsys.domain import IngestError, Paper

USER_AGENT = "paperboy/0.1 (research-paper digest; harvester)"
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class HarvestError(RuntimeError):
    """A source's run failed: which source, which request and why."""

    def __init__(self, source: str, request: str, reason: str) -> None:
        self.source = source
        self.request = request
        self.reason = reason
        super().__init__(f"{source}: {request}: {reason}")


@dataclass
class Timing:
    """The clock and sleep every wait goes through, injected so tests read the waits."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waits.append(seconds)
            self.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request before the source's run fails."""

    max_retries: int = 4
    backoff_s: float = 2.0  # first pause without Retry-After; doubles each time
    max_wait_s: float = 300.0  # a longer Retry-After fails the run; the next run retries


class SourceHttp:
    """Polite GETs for one source over one kept-alive ``httpx.Client``."""

    def __init__(
        self,
        source: str,
        *,
        timeout_s: float,
        min_interval_s: float,
        timing: Timing | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.source = source
        self.timing = timing or Timing()
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self._min_interval_s = min_interval_s
        self._not_before = -math.inf
        # Connection set-up failures are retried inside the transport; the rest below.
        transport = httpx.HTTPTransport(retries=1)
        self.client = httpx.Client(
            timeout=timeout_s,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=True,
        )

    def __enter__(self) -> SourceHttp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.client.close()

    def get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        """GET ``url``; retry what may pass; raise :class:`HarvestError` for the rest."""
        request = _describe(url, params)
        for attempt in range(self.retry.max_retries + 1):
            self.timing.wait(self._not_before - self.timing.clock())
            outcome = self._attempt(url, params)
            self._not_before = self.timing.clock() + self._min_interval_s
            if isinstance(outcome, httpx.Response) and outcome.status_code not in _TRANSIENT:
                return _successful(outcome, self.source, request)
            if attempt == self.retry.max_retries:
                break
            self._back_off(outcome, attempt, request)
        raise HarvestError(
            self.source,
            request,
            f"{_reason(outcome)} after {self.retry.max_retries + 1} attempts; the next run retries",
        )

    def _attempt(self, url: str, params: dict[str, str] | None) -> httpx.Response | str:
        """The response, or the reason the request got none (timeout, connection)."""
        try:
            return self.client.get(url, params=params)
        except httpx.TimeoutException:
            return f"no answer within {self.timeout_s:g} s"
        except httpx.TransportError as exc:
            return f"cannot connect: {exc}"

    def _back_off(self, outcome: httpx.Response | str, attempt: int, request: str) -> None:
        hinted = _retry_after(outcome) if isinstance(outcome, httpx.Response) else None
        if hinted is not None and hinted > self.retry.max_wait_s:
            raise HarvestError(
                self.source,
                request,
                f"{_reason(outcome)} and asks to wait {hinted:g} s; the next run retries",
            )
        wait = hinted if hinted is not None else self.retry.backoff_s * 2**attempt
        self._not_before = max(self._not_before, self.timing.clock() + wait)


def _describe(url: str, params: dict[str, str] | None) -> str:
    return f"GET {url}?{urlencode(params)}" if params else f"GET {url}"


def _reason(outcome: httpx.Response | str) -> str:
    if isinstance(outcome, str):
        return outcome
    return f"answered {outcome.status_code} {outcome.reason_phrase}".rstrip()


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; None when absent or a date (OAI-PMH servers send seconds)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _successful(response: httpx.Response, source: str, request: str) -> httpx.Response:
    if response.is_success:
        return response
    detail = " ".join(response.text.split())[:200] or "(empty body)"
    raise HarvestError(source, request, f"{_reason(response)}: {detail}")


def _parsed(
    parser: Callable[[bytes, str], Page], response: httpx.Response, source: str, request: str
) -> Page:
    """Parse a whole answer before anything of it is used: a bad one fails the run."""
    try:
        return parser(response.content, source)
    except IngestError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise HarvestError(source, request, f"{exc.reason}{where}") from None


# Fetch loops, one per kind ----------------------------------------------------------------


def oai_pages(http: SourceHttp, source: ArxivOaiSource, since: date) -> Iterator[Page]:
    """``ListRecords`` for each set from ``since``, following resumption tokens."""
    for set_spec in source.sets:
        params = {
            "verb": "ListRecords",
            "metadataPrefix": "arXiv",
            "set": set_spec,
            "from": since.isoformat(),
        }
        while True:
            response = http.get(source.url, params)
            page = _parsed(parse_list_records, response, source.name, _describe(source.url, params))
            yield page
            if page.next is None:
                break
            # A resumption request carries the token alone, as OAI-PMH requires.
            params = {"verb": "ListRecords", "resumptionToken": page.next}


def feed_pages(http: SourceHttp, source: RssSource) -> Iterator[Page]:
    """The feed as it is now: one page."""
    response = http.get(source.url)
    yield _parsed(parse_feed, response, source.name, _describe(source.url, None))


def biorxiv_pages(
    http: SourceHttp, source: BiorxivSource, since: date, until: date
) -> Iterator[Page]:
    """``details`` for the interval ``since``..``until``, following the cursor."""
    cursor = "0"
    params = {"category": source.category} if source.category else None
    while True:
        url = f"{source.url.rstrip('/')}/details/{source.server}/{since}/{until}/{cursor}/json"
        page = _parsed(parse_details, http.get(url, params), source.name, _describe(url, params))
        yield page
        if page.next is None:
            return
        cursor = page.next


def api_pages(http: SourceHttp, source: ArxivApiSource, since: date) -> Iterator[Page]:
    """Newest submissions matching the query, until one older than ``since``.

    Goes through :class:`ArxivClient` (its 3 s spacing and 429/503 handling), over this
    module's HTTP client.
    """
    client = ArxivClient(
        source.url,
        min_interval_s=source.min_interval_s,
        timeout_s=http.timeout_s,
        http=http.client,
        clock=http.timing.clock,
        sleep=http.timing.wait,
        max_retries=http.retry.max_retries,
        max_retry_wait_s=http.retry.max_wait_s,
    )
    request = _describe(source.url, {"search_query": source.query})
    papers = client.iter_newest(source.query, source.max_results, source.page_size)
    batch: list[Paper] = []
    try:
        for paper in papers:
            if paper.published is not None and paper.published.date() < since:
                break  # sorted newest first: everything after this is older still
            batch.append(paper)
            if len(batch) == source.page_size:
                yield _api_page(batch, source.name)
                batch = []
    except (ArxivError, IngestError) as exc:
        raise HarvestError(source.name, request, str(exc)) from None
    if batch:
        yield _api_page(batch, source.name)


def _api_page(papers: list[Paper], source: str) -> Page:
    stamps = [p.published.isoformat() for p in papers if p.published is not None]
    # The Atom parser names the request URL as each paper's source; harvests name the source.
    named = [replace(paper, source=source) for paper in papers]
    return Page(papers=named, latest=max(stamps, default=None))


def pages(http: SourceHttp, source: SourceConfig, since: date, today: date) -> Iterator[Page]:
    """The pages of one run of ``source``, whatever its kind."""
    if isinstance(source, ArxivOaiSource):
        return oai_pages(http, source, since)
    if isinstance(source, ArxivApiSource):
        return api_pages(http, source, since)
    if isinstance(source, RssSource):
        return feed_pages(http, source)
    return biorxiv_pages(http, source, since, today)
