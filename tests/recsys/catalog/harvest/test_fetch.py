"""The one HTTP module against the stand-ins: paging, politeness, retries, broken answers."""

from __future__ import annotations

from datetime import date

import pytest

from recsys.catalog.harvest.config import ArxivApiSource, ArxivOaiSource, BiorxivSource, RssSource
from recsys.catalog.harvest.fetch import (
    HarvestError,
    RetryPolicy,
    SourceHttp,
    Timing,
    api_pages,
    biorxiv_pages,
    feed_pages,
    oai_pages,
)
from recsys.testing.arxiv import FakeArxiv, atom_entry, atom_feed
from recsys.testing.http import Reply
from recsys.testing.sources import (
    FakeBiorxiv,
    FakeFeed,
    FakeOai,
    FeedItem,
    arxiv_rss,
    biorxiv_item,
    broken,
    busy,
    oai_records,
)

SINCE = date(2026, 11, 1)


def _http(timing: Timing, min_interval_s: float = 0.0, **retry: float) -> SourceHttp:
    policy = RetryPolicy(**retry) if retry else None  # type: ignore[arg-type]
    return SourceHttp("src", timeout_s=5.0, min_interval_s=min_interval_s, timing=timing,
                      retry=policy)  # fmt: skip


def _oai(url: str, *sets: str) -> ArxivOaiSource:
    return ArxivOaiSource(name="src", kind="arxiv-oai", url=url, sets=list(sets or ["cs"]))


def test_oai_follows_resumption_tokens_to_the_end(timing: Timing) -> None:
    with FakeOai(oai_records(2500), page_size=1000) as oai, _http(timing) as http:
        pages = list(oai_pages(http, _oai(oai.base_url), SINCE))

    assert [len(p.papers) for p in pages] == [1000, 1000, 500]
    assert len({p.arxiv_id for page in pages for p in page.papers}) == 2500
    first, second, third = oai.params()
    assert first == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs",
                     "from": "2026-11-01"}  # fmt: skip
    assert second == {"verb": "ListRecords", "resumptionToken": "cs|2026-11-01|1000"}
    assert third["resumptionToken"] == "cs|2026-11-01|2000"
    assert pages[-1].next is None and pages[0].total == 2500


def test_oai_harvests_each_set_and_takes_no_records_match_as_empty(timing: Timing) -> None:
    records = oai_records(3, set_spec="cs") + oai_records(0)
    with FakeOai(records) as oai, _http(timing) as http:
        pages = list(oai_pages(http, _oai(oai.base_url, "cs", "physics:hep-th"), SINCE))

    assert [len(p.papers) for p in pages] == [3, 0]
    assert [p["set"] for p in oai.params()] == ["cs", "physics:hep-th"]


def test_a_busy_503_is_waited_out_as_retry_after_says(timing: Timing) -> None:
    with FakeOai(oai_records(5)) as oai, _http(timing, min_interval_s=1.0) as http:
        oai.fail_next(busy(retry_after="7"), busy(retry_after="3"))
        (page,) = oai_pages(http, _oai(oai.base_url), SINCE)

    assert len(page.papers) == 5
    assert timing.waits == [7.0, 3.0]
    assert len(oai.requests) == 3


def test_a_server_busy_for_too_long_fails_the_run_naming_source_and_request(
    timing: Timing,
) -> None:
    with FakeOai(oai_records(5)) as oai, _http(timing) as http:
        oai.fail_next(busy(retry_after="3600"))
        with pytest.raises(HarvestError) as caught:
            list(oai_pages(http, _oai(oai.base_url), SINCE))

    message = str(caught.value)
    assert message.startswith(f"src: GET {oai.base_url}?verb=ListRecords&metadataPrefix=arXiv")
    assert message.endswith("answered 503 Service Unavailable and asks to wait 3600 s; "
                            "the next run retries")  # fmt: skip


def test_5xx_without_retry_after_backs_off_exponentially_then_fails(timing: Timing) -> None:
    error = Reply(502, "bad gateway", {"Content-Type": "text/plain"})
    with FakeOai(oai_records(5)) as oai, _http(timing, max_retries=2, backoff_s=2.0) as http:
        oai.fail_next(error, error, error)
        with pytest.raises(HarvestError, match="answered 502 Bad Gateway after 3 attempts"):
            list(oai_pages(http, _oai(oai.base_url), SINCE))

    assert timing.waits == [2.0, 4.0]


def test_a_rejected_request_fails_at_once_with_the_servers_words(timing: Timing) -> None:
    with FakeOai([]) as oai, _http(timing) as http:
        oai.fail_next(Reply(400, "illegal set", {"Content-Type": "text/plain"}))
        with pytest.raises(HarvestError, match="answered 400 Bad Request: illegal set"):
            list(oai_pages(http, _oai(oai.base_url), SINCE))

    assert len(oai.requests) == 1


def test_a_broken_page_fails_the_run_naming_the_resumption_request(timing: Timing) -> None:
    with FakeOai(oai_records(2500), page_size=1000) as oai, _http(timing) as http:
        pages = oai_pages(http, _oai(oai.base_url), SINCE)
        assert len(next(pages).papers) == 1000
        oai.fail_next(broken())
        with pytest.raises(HarvestError) as caught:
            next(pages)

    assert "resumptionToken=cs%7C2026-11-01%7C1000: malformed XML" in str(caught.value)


def test_an_unreachable_source_fails_after_its_retries(timing: Timing) -> None:
    with FakeOai([]) as oai:
        url = oai.base_url  # the port is free again once the stand-in stops
    with _http(timing, max_retries=1) as http, pytest.raises(HarvestError) as caught:
        list(oai_pages(http, _oai(url), SINCE))

    assert "cannot connect" in str(caught.value)
    assert "after 2 attempts" in str(caught.value)


def test_biorxiv_follows_the_cursor_over_the_interval(timing: Timing) -> None:
    items = [biorxiv_item(n, day="2026-11-20") for n in range(250)]
    items += [biorxiv_item(999, day="2026-10-01")]  # outside the interval
    source = BiorxivSource(name="src", kind="biorxiv", url="", category="neuroscience")
    with FakeBiorxiv(items) as fake, _http(timing) as http:
        source = source.model_copy(update={"url": fake.base_url})
        pages = list(biorxiv_pages(http, source, date(2026, 11, 19), date(2026, 11, 21)))

    assert [len(p.papers) for p in pages] == [100, 100, 50]
    assert fake.paths() == [
        f"/details/biorxiv/2026-11-19/2026-11-21/{c}/json" for c in (0, 100, 200)
    ]
    assert {p["category"] for p in fake.params()} == {"neuroscience"}


def test_a_feed_is_one_page(timing: Timing) -> None:
    with FakeFeed(
        arxiv_rss([FeedItem("2611.00001", "One"), FeedItem("2611.00002", "Two")])
    ) as feed:
        source = RssSource(name="src", kind="rss", url=feed.base_url)
        with _http(timing) as http:
            (page,) = feed_pages(http, source)

    assert [p.title for p in page.papers] == ["One", "Two"]


def test_the_arxiv_api_keeps_3_s_between_calls_and_stops_at_the_watermark(
    timing: Timing,
) -> None:
    newer = [
        atom_entry(f"2611.{n:05d}", f"New {n}", published="2026-11-20T10:00:00Z") for n in (1, 2)
    ]
    older = [atom_entry("2611.00003", "Newish", published="2026-11-19T10:00:00Z"),
             atom_entry("2610.00004", "Old", published="2026-10-01T10:00:00Z")]  # fmt: skip
    with FakeArxiv() as arxiv, _http(timing) as http:
        arxiv.serve(atom_feed(*newer), atom_feed(*older))
        source = ArxivApiSource(name="api", kind="arxiv-api", url=arxiv.base_url,
                                query="cat:cs.LG", page_size=2)  # fmt: skip
        pages = list(api_pages(http, source, date(2026, 11, 15)))

    assert [[p.title for p in page.papers] for page in pages] == [["New 1", "New 2"], ["Newish"]]
    assert {p.source for page in pages for p in page.papers} == {"api"}
    assert timing.waits == [3.0]
    assert [(p["start"], p["sortBy"]) for p in arxiv.params()] == [
        ("0", "submittedDate"), ("2", "submittedDate"),
    ]  # fmt: skip


def test_the_arxiv_api_waits_out_a_busy_answer_and_fails_naming_the_source(
    timing: Timing,
) -> None:
    entry = atom_entry("2611.00001", "New", published="2026-11-20T10:00:00Z")
    with FakeArxiv() as arxiv, _http(timing) as http:
        source = ArxivApiSource(name="api", kind="arxiv-api", url=arxiv.base_url, query="q")
        arxiv.answer_busy(retry_after="9")
        arxiv.serve(atom_feed(entry))
        (page,) = api_pages(http, source, date(2026, 11, 15))
        arxiv.answer(200, "<html>maintenance</html>", "text/html")
        with pytest.raises(HarvestError) as caught:
            list(api_pages(http, source, date(2026, 11, 15)))

    assert [p.title for p in page.papers] == ["New"]
    assert 9.0 in timing.waits
    assert str(caught.value).startswith(f"api: GET {arxiv.base_url}?search_query=q: ")
    assert "expected an Atom <feed>" in str(caught.value)
