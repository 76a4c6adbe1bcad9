"""Fuzz the parsers of network answers (RSS/Atom feeds, OAI-PMH, bioRxiv): whatever a
source sends, only ``IngestError`` escapes, and every paper that comes out is storable.

The file parsers are fuzzed in ``test_fuzz.py``; these take a body, not a path. The feed
parser does not yet check what it returns (a control character or a url "0" comes out as
given), so for it only the first half is asserted; see :data:`CHECKED`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.catalog.sources.biorxiv import parse_details
from recsys.catalog.sources.feeds import parse_feed
from recsys.catalog.sources.oai import parse_list_records
from recsys.catalog.sources.pages import Page
from recsys.domain import IngestError
from tests.recsys.catalog.sources.test_fuzz import _check_storable, json_values, texts

SOURCE = "fuzzed"
OAI_NS = "http://www.openarchives.org/OAI/2.0/"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def rss(draw: st.DrawFn) -> bytes:
    items = "".join(
        f"<item><title>{_xml(draw(texts))}</title><link>{_xml(draw(texts))}</link>"
        f"<description>{_xml(draw(texts))}</description><pubDate>{_xml(draw(texts))}</pubDate>"
        f"<dc:creator>{_xml(draw(texts))}</dc:creator></item>"
        for _ in range(draw(st.integers(0, 3)))
    )
    body = (
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>t</title>{items}</channel></rss>"
    )
    return body.encode("utf-8", "surrogatepass")


@st.composite
def oai(draw: st.DrawFn) -> bytes:
    records = "".join(
        "<record><header><identifier>oai:arXiv.org:"
        f"{_xml(draw(st.sampled_from(['2401.01234', 'hep-th/9901001', '']) | texts))}"
        f"</identifier><datestamp>{_xml(draw(texts))}</datestamp></header>"
        '<metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
        f"<id>{_xml(draw(texts))}</id><title>{_xml(draw(texts))}</title>"
        f"<abstract>{_xml(draw(texts))}</abstract><created>{_xml(draw(texts))}</created>"
        f"<categories>{_xml(draw(texts))}</categories>"
        f"<authors><author><keyname>{_xml(draw(texts))}</keyname></author></authors>"
        "</arXiv></metadata></record>"
        for _ in range(draw(st.integers(0, 3)))
    )
    body = f'<OAI-PMH xmlns="{OAI_NS}"><ListRecords>{records}</ListRecords></OAI-PMH>'
    return body.encode("utf-8", "surrogatepass")


@st.composite
def biorxiv(draw: st.DrawFn) -> bytes:
    fields = ["doi", "title", "abstract", "authors", "category", "date", "version", "published"]
    item = st.fixed_dictionaries({}, optional={name: json_values for name in fields})
    status = draw(st.sampled_from(["ok", "no posts found"]) | texts)
    body = {"messages": [{"status": status}], "collection": draw(st.lists(item, max_size=3))}
    return json.dumps(body).encode("utf-8", "surrogatepass")


# The parsers whose papers pass recsys.catalog.sources.record's checks.
CHECKED = {parse_list_records, parse_details}


def _parse(parser: Callable[[bytes, str], Page], body: bytes) -> None:
    try:
        page = parser(body, SOURCE)
    except IngestError as exc:
        assert exc.source == SOURCE and exc.reason
        return
    if parser in CHECKED:
        for paper in page.papers:
            _check_storable(paper)


@pytest.mark.parametrize(
    ("parser", "bodies"),
    [(parse_feed, rss()), (parse_list_records, oai()), (parse_details, biorxiv())],
    ids=["feed", "oai", "biorxiv"],
)
def test_only_ingest_errors_escape_a_network_parser(
    parser: Callable[[bytes, str], Page], bodies: st.SearchStrategy[bytes]
) -> None:
    @settings(max_examples=150, deadline=None)
    @given(body=st.one_of(bodies, st.binary(max_size=200)))
    def run(body: bytes) -> None:
        _parse(parser, body)

    run()
