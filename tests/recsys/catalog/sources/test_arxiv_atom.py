"""arXiv Atom feeds: fields, fallbacks, and the errors arXiv and broken XML produce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recsys.catalog.sources.arxiv import parse_atom
from recsys.domain import IngestError, Paper
from recsys.testing.arxiv import atom_entry, atom_error_feed, atom_feed

# A trimmed copy of a real arXiv API answer, odd whitespace included.
REAL_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?search_query%3Dall%3Aelectron" rel="self"/>
  <title type="html">ArXiv Query: search_query=all:electron</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/abs/hep-ex/0307015v1</id>
    <updated>2003-07-07T13:46:39-04:00</updated>
    <published>2003-07-07T13:46:39-04:00</published>
    <title>Multi-Electron Production at High Transverse
  Momenta in ep Collisions at HERA</title>
    <summary>  Multi-electron production is studied at high electron transverse momentum
in positron- and electron-proton collisions.
</summary>
    <author>
      <name>H1 Collaboration</name>
    </author>
    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">10.1140/epjc/s2003-01326-x</arxiv:doi>
    <link title="doi" href="http://dx.doi.org/10.1140/epjc/s2003-01326-x" rel="related"/>
    <arxiv:comment xmlns:arxiv="http://arxiv.org/schemas/atom">23 pages</arxiv:comment>
    <link href="http://arxiv.org/abs/hep-ex/0307015v1" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/hep-ex/0307015v1" rel="related"
      type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="hep-ex"
      scheme="http://arxiv.org/schemas/atom"/>
    <category term="hep-ex" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"""


def test_a_real_arxiv_entry_is_parsed_field_by_field() -> None:
    published = datetime.fromisoformat("2003-07-07T13:46:39-04:00")
    assert parse_atom(REAL_FEED, "feed.xml") == [
        Paper(
            title="Multi-Electron Production at High Transverse Momenta in ep Collisions at HERA",
            abstract="Multi-electron production is studied at high electron transverse momentum "
            "in positron- and electron-proton collisions.",
            authors=("H1 Collaboration",),
            categories=("hep-ex",),
            published=published,
            url="http://arxiv.org/abs/hep-ex/0307015v1",
            arxiv_id="hep-ex/0307015",
            doi="10.1140/epjc/s2003-01326-x",
            external_id="hep-ex/0307015",
            source="feed.xml",
            line=7,
        )
    ]


def test_entries_keep_order_authors_categories_and_lines() -> None:
    feed = atom_feed(
        atom_entry("2401.00001", "First", authors=("A", "B"), categories=("cs.LG", "cs.AI")),
        atom_entry("2401.00002", "Second", version=3, doi="10.1000/Two"),
    )
    first, second = parse_atom(feed, "q")
    assert (first.authors, first.categories, first.line) == (("A", "B"), ("cs.LG", "cs.AI"), 5)
    assert (second.arxiv_id, second.doi, second.line) == ("2401.00002", "10.1000/two", 16)
    assert second.url == "http://arxiv.org/abs/2401.00002v3"
    assert second.published == datetime(2024, 1, 2, 18, tzinfo=UTC)


def test_an_entry_without_alternate_link_gets_the_abs_url() -> None:
    entry = atom_entry("2401.00001", "T").replace('rel="alternate"', 'rel="related"')
    (paper,) = parse_atom(atom_feed(entry), "q")
    assert paper.url == "https://arxiv.org/abs/2401.00001"


def test_an_empty_feed_has_no_papers() -> None:
    assert parse_atom(atom_feed(), "q") == []


def test_an_api_error_feed_raises_with_arxivs_message() -> None:
    with pytest.raises(IngestError) as caught:
        parse_atom(atom_error_feed("incorrect id format for 1234.12345"), "q")
    assert caught.value.reason == "arXiv API error: incorrect id format for 1234.12345"
    assert caught.value.line == 5


def test_malformed_xml_raises_at_the_parsers_line() -> None:
    broken = atom_feed(atom_entry("2401.00001", "T")).replace("</summary>", "</sumary>")
    with pytest.raises(IngestError) as caught:
        parse_atom(broken, "feed.xml")
    assert (caught.value.source, caught.value.line) == ("feed.xml", 9)
    assert caught.value.reason.startswith("malformed XML: mismatched tag: line 9")


def test_an_empty_document_is_malformed() -> None:
    with pytest.raises(IngestError, match="malformed XML: no element found"):
        parse_atom("", "q")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            ("http://arxiv.org/abs/2401.00001v1</id>", "urn:x</id>"),
            "entry <id> 'urn:x' is not an arXiv abs URL",
        ),
        (("<title>T</title>", "<title> </title>"), "entry 2401.00001 has no <title>"),
        (
            ("2024-01-02T18:00:00Z", "soon"),
            "field 'published' is not an ISO-8601 date or datetime: 'soon'",
        ),
    ],
)
def test_a_bad_entry_is_refused_at_its_line(change: tuple[str, str], reason: str) -> None:
    feed = atom_feed(atom_entry("2401.00001", "T")).replace(*change)
    with pytest.raises(IngestError) as caught:
        parse_atom(feed, "q")
    assert (caught.value.line, caught.value.reason) == (5, reason)


def test_a_document_that_is_not_a_feed_is_refused() -> None:
    with pytest.raises(IngestError, match="q:1: expected an Atom <feed>, found html"):
        parse_atom("<html><body>Service unavailable</body></html>", "q")
