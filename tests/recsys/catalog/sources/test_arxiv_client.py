"""The arXiv client against a local stand-in: paging, politeness, retries, errors.

Time is a fake clock: the client "sleeps" by advancing it, so the tests read exactly how
long it waited without waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from recsys.catalog.sources.arxiv import ArxivClient, ArxivError
from recsys.domain import IngestError
from recsys.testing.arxiv import FakeArxiv, atom_entry, atom_error_feed, atom_feed


class FakeClock:
    """A monotonic clock that only moves when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture()
def arxiv() -> Iterator[FakeArxiv]:
    with FakeArxiv() as fake:
        yield fake


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def client(arxiv: FakeArxiv, clock: FakeClock) -> Iterator[ArxivClient]:
    with ArxivClient(arxiv.base_url, timeout_s=5.0, clock=clock, sleep=clock.sleep) as made:
        yield made


def _page(*numbers: int) -> str:
    return atom_feed(*(atom_entry(f"2401.{n:05d}", f"Paper {n}") for n in numbers))


def test_search_sends_the_query_and_parses_the_page(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.serve(_page(1, 2))
    papers = client.search("cat:cs.LG AND ti:diffusion", start=10, max_results=2)
    assert [(p.arxiv_id, p.title) for p in papers] == [
        ("2401.00001", "Paper 1"),
        ("2401.00002", "Paper 2"),
    ]
    assert papers[0].source.startswith(arxiv.base_url + "?")
    assert arxiv.params() == [
        {"search_query": "cat:cs.LG AND ti:diffusion", "start": "10", "max_results": "2"}
    ]
    assert clock.sleeps == []  # the first request need not wait


def test_iter_recent_pages_newest_first_until_max_results(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.serve(_page(1, 2), _page(3, 4), _page(5))
    papers = list(client.iter_recent(["cs.LG", "cs.CL"], max_results=5, page_size=2))
    assert [p.arxiv_id for p in papers] == [f"2401.0000{n}" for n in range(1, 6)]
    sent = arxiv.params()
    assert [(q["start"], q["max_results"]) for q in sent] == [("0", "2"), ("2", "2"), ("4", "1")]
    for query in sent:
        assert query["search_query"] == "cat:cs.LG OR cat:cs.CL"
        assert (query["sortBy"], query["sortOrder"]) == ("submittedDate", "descending")
    assert clock.sleeps == [3.0, 3.0]


def test_iter_recent_stops_at_a_short_page(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.serve(_page(1, 2, 3), _page(4))
    papers = list(client.iter_recent(["cs.LG"], max_results=100, page_size=3))
    assert len(papers) == 4
    assert len(arxiv.queries) == 2


def test_time_already_spent_counts_towards_the_interval(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.serve(_page(1), _page(2), _page(3))
    client.search("a")
    clock.now += 2.0
    client.search("b")
    clock.now += 5.0
    client.search("c")
    assert clock.sleeps == [1.0]


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_answer_is_retried_after_retry_after(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock, status: int
) -> None:
    arxiv.answer_busy(retry_after="7", status=status)
    arxiv.serve(_page(1))
    assert [p.arxiv_id for p in client.search("q")] == ["2401.00001"]
    assert clock.sleeps == [7.0]
    assert arxiv.queries[0] == arxiv.queries[1]


def test_busy_without_retry_after_backs_off_exponentially(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.answer_busy(retry_after=None)
    arxiv.answer_busy(retry_after="not a number")
    arxiv.serve(_page(1))
    client.search("q")
    assert clock.sleeps == [6.0, 12.0]


def test_arxiv_that_stays_busy_raises_a_transient_error(arxiv: FakeArxiv, clock: FakeClock) -> None:
    for _ in range(3):
        arxiv.answer_busy(retry_after="1")
    client = ArxivClient(arxiv.base_url, clock=clock, sleep=clock.sleep, max_retries=2)
    with client, pytest.raises(ArxivError, match="still answers 503 after 3 attempts") as caught:
        client.search("q")
    assert caught.value.transient
    assert len(arxiv.queries) == 3
    assert clock.sleeps == [3.0, 3.0]  # Retry-After 1 s, but never faster than 3 s apart


def test_a_retry_after_too_long_to_sleep_is_handed_to_the_caller(
    arxiv: FakeArxiv, client: ArxivClient, clock: FakeClock
) -> None:
    arxiv.answer_busy(retry_after="3600")
    with pytest.raises(ArxivError, match="asks to wait 3600 s") as caught:
        client.search("q")
    assert (caught.value.transient, caught.value.retry_after_s) == (True, 3600.0)
    assert clock.sleeps == []


def test_a_rejected_query_is_a_permanent_error_with_arxivs_words(
    arxiv: FakeArxiv, client: ArxivClient
) -> None:
    arxiv.answer(400, atom_error_feed("malformed query: ti:("))
    with pytest.raises(
        ArxivError, match=r"answered 400 .*arXiv API error: malformed query"
    ) as caught:
        client.search("ti:(")
    assert not caught.value.transient


def test_a_server_error_is_transient(arxiv: FakeArxiv, client: ArxivClient) -> None:
    arxiv.answer(500, "internal error", content_type="text/plain")
    with pytest.raises(ArxivError, match="answered 500 .*internal error") as caught:
        client.search("q")
    assert caught.value.transient
    assert len(arxiv.queries) == 1  # only 429 and 503 are retried


def test_an_error_feed_with_status_200_raises_ingest_error(
    arxiv: FakeArxiv, client: ArxivClient
) -> None:
    arxiv.serve(atom_error_feed("max_results must be below 30000"))
    with pytest.raises(IngestError, match="arXiv API error: max_results must be below 30000"):
        client.search("q")


def test_an_unreachable_arxiv_is_a_transient_error(clock: FakeClock) -> None:
    with FakeArxiv() as gone:
        url = gone.base_url
    client = ArxivClient(url, clock=clock, sleep=clock.sleep)
    with client, pytest.raises(ArxivError, match="cannot reach arXiv") as caught:
        client.search("q")
    assert caught.value.transient


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.iter_recent([], max_results=5), "at least one category"),
        (lambda c: c.iter_recent(["cs.LG"], max_results=5, page_size=0), "page size"),
        (lambda c: c.iter_recent(["cs.LG"], max_results=-1), "max_results"),
        (lambda c: c.search("q", max_results=2001), "page size"),
        (lambda c: c.search("q", start=-1), "start"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    arxiv: FakeArxiv, client: ArxivClient, call: Callable[[ArxivClient], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call(client)
    assert arxiv.queries == []
