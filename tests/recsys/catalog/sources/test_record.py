"""The one Paper builder: each hostile value is refused naming file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recsys.catalog.sources.record import is_web_url, paper_from_fields, text_problem
from recsys.domain import IngestError

GOOD = {"id": "2401.01234", "title": "Deep Nets"}


def _refusal(**fields: object) -> str:
    with pytest.raises(IngestError) as caught:
        paper_from_fields({**GOOD, **fields}, "f.jsonl", 7, require_id=True)
    assert (caught.value.source, caught.value.line) == ("f.jsonl", 7)
    return caught.value.reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"title": "Deep\x00Nets"},
            "field 'title' holds the control character U+0000 at character 5",
        ),
        (
            {"abstract": "ok \x1b[31m red"},
            "field 'abstract' holds the control character U+001B at character 4",
        ),
        ({"title": "Caf\ud800"}, "field 'title' holds a lone surrogate U+D800 at character 4"),
        (
            {"authors": ["Ada", "B\x85ob"]},
            "field 'authors[1]' holds the control character U+0085 at character 2",
        ),
        ({"id": "x" * 256}, "field 'id' is 256 characters long (at most 255)"),
        ({"doi": "10.1000/" + "a" * 250}, "field 'doi' is 258 characters long (at most 255)"),
        ({"title": "t" * 2001}, "field 'title' is 2,001 characters long (at most 2,000)"),
        (
            {"categories": ["cs.LG"] * 10_001},
            "field 'categories' has 10,001 items (at most 10,000)",
        ),
        (
            {"published": "0001-01-01T00:00:00+05:00"},
            "field 'published' year 1 is outside 1600..2200",
        ),
        ({"published": "9999-12-31"}, "field 'published' year 9999 is outside 1600..2200"),
        (
            {"published": "2024-13-01"},
            "field 'published' is not an ISO-8601 date or datetime: '2024-13-01'",
        ),
        ({"published": 20240101}, "field 'published' must be a string, got int"),
    ],
)
def test_a_hostile_field_is_refused_naming_it(fields: dict[str, object], reason: str) -> None:
    assert _refusal(**fields) == reason


def test_tabs_and_newlines_are_whitespace_not_controls() -> None:
    paper = paper_from_fields({**GOOD, "title": "Deep\tNets\r\n v2"}, "f", 1, require_id=True)
    assert paper.title == "Deep Nets v2"


def test_published_is_stored_in_utc() -> None:
    fields = {**GOOD, "published": "2024-01-02T01:00:00+05:00"}
    stamp = paper_from_fields(fields, "f", 1, require_id=True).published
    assert stamp == datetime(2024, 1, 1, 20, 0, tzinfo=UTC)
    assert stamp is not None and stamp.utcoffset() is not None and stamp.tzinfo == UTC


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.domain)//",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.org/paper.pdf",
        "//evil.example/x",
        "http://",
        "http://[::1",
        "https://example.org/a b",
    ],
)
def test_a_url_that_is_not_http_is_dropped_and_reported(url: str) -> None:
    warnings: list[IngestError] = []
    fields = {**GOOD, "url": url}
    paper = paper_from_fields(fields, "f.csv", 3, require_id=True, warn=warnings.append)
    assert paper.url is None
    assert paper.title == "Deep Nets"  # the record itself is kept
    assert [(w.source, w.line) for w in warnings] == [("f.csv", 3)]
    assert warnings[0].reason.startswith("field 'url' is not an http(s) URL, dropped: ")


def test_without_a_listener_a_bad_url_is_still_dropped() -> None:
    paper = paper_from_fields({**GOOD, "url": "javascript:x"}, "f", 1, require_id=True)
    assert paper.url is None


@pytest.mark.parametrize("url", ["http://arxiv.org/abs/2401.01234", "HTTPS://Example.org/p?q=1#f"])
def test_http_urls_are_kept(url: str) -> None:
    paper = paper_from_fields({**GOOD, "url": url}, "f", 1, require_id=True)
    assert paper.url == url
    assert is_web_url(url)


def test_text_problem_is_none_for_ordinary_unicode() -> None:
    assert text_problem("Rønnow – Gödel’s \u00ad soft hyphen, 中文, \U0001d4b3") is None
