"""Fuzz every paper parser: whatever the bytes, only ``IngestError`` escapes.

And every paper that does come out is storable: no control characters or surrogates,
fields within the column widths, an http(s) ``url`` or none, a UTC date in range.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.catalog.sources import record
from recsys.catalog.sources.files import read_papers
from recsys.domain import IngestError, Paper

FIELDS = ["id", "title", "abstract", "authors", "categories", "published", "url", "doi", "arxiv_id"]
NASTY = ["\x00", "\x1b", "\ud800", "\u2028", "\r", '"', ",", "\n", "<", "&", "{", ":"]

# Text that leans towards what breaks parsers: controls, quotes, separators, markup.
chars = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(NASTY)), max_size=40)
texts = st.one_of(chars, chars.map(lambda t: "javascript:" + t), chars.map(lambda t: "http://" + t))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
plausible = st.fixed_dictionaries(
    {"id": st.sampled_from(["2401.01234v2", "hep-th/9901001", "x"]), "title": texts},
    optional={
        name: st.one_of(
            texts,
            json_values,
            st.sampled_from(["2024-01-02", "0001-01-01T00:00+05:00", "https://a.b/c"]),
        )
        for name in FIELDS[2:]
    },
)


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.one_of(plausible.map(json.dumps), texts), max_size=4))
    return _encoded("\n".join(lines))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    others = st.lists(st.sampled_from([*FIELDS, "other"]), unique=True, max_size=4)
    header = ["title", *(name for name in draw(others) if name != "title")]
    cells = st.one_of(texts, texts.map(lambda t: f'"{t}"'))
    # Mostly rows of the header's width, so the field checks are reached as well.
    width = st.sampled_from([len(header)] * 3 + [len(header) + 1])
    rows = draw(
        st.lists(width.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n)), max_size=4)
    )
    return _encoded("\n".join(",".join(row) for row in [header, *rows]))


@st.composite
def atom_files(draw: st.DrawFn) -> bytes:
    # Mostly escaped, so that entries parse and the field checks are reached.
    clean = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=30)
    xml_texts = st.one_of(
        clean.map(lambda t: escape(t, {"'": "&apos;"})),
        clean.map(lambda t: "javascript:" + escape(t, {"'": "&apos;"})),
        st.sampled_from(["&#x85;", "&#x9f;", "0001-01-01", "2024-01-02T03:04:05-05:00"]),
        texts,
    )

    def field(tag: str) -> str:
        return f"<{tag}>{draw(xml_texts)}</{tag}>"

    arxiv_id = draw(st.sampled_from(["2401.01234v1", "hep-th/9901001", ""]))
    entries = [
        f"<entry><id>http://arxiv.org/abs/{arxiv_id}</id><title>T {draw(xml_texts)}</title>"
        f"{field('summary')}{field('published')}<author>{field('name')}</author>"
        f"<link rel='alternate' href='{draw(xml_texts)}'/>{field('arxiv:doi')}"
        f"<category term='{draw(xml_texts)}'/></entry>"
        for _ in range(draw(st.integers(0, 3)))
    ]
    return _encoded(
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">'
        + "\n".join(entries)
        + "</feed>"
    )


dumps = st.lists(texts, max_size=8).map(lambda lines: _encoded("\n".join(lines)))
raw_bytes = st.binary(max_size=200)


def _check_storable(paper: Paper) -> None:
    strings = [paper.title, paper.abstract, *paper.authors, *paper.categories]
    strings += [s for s in (paper.url, paper.doi, paper.arxiv_id, paper.external_id) if s]
    assert all(record.text_problem(s) is None for s in strings)
    assert paper.title.strip()
    assert paper.url is None or record.is_web_url(paper.url)
    assert len(paper.doi or "") <= record.MAX_DOI_CHARS
    assert len(paper.arxiv_id or "") <= record.MAX_ARXIV_ID_CHARS
    assert len(paper.external_id or "") <= record.MAX_ID_CHARS
    if paper.published is not None:
        assert paper.published.utcoffset() is not None
        assert record.MIN_YEAR <= paper.published.year <= record.MAX_YEAR


def _parse(directory: Path, suffix: str, content: bytes) -> None:
    path = directory / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        papers = read_papers(path, warn=lambda problem: None)
    except IngestError as exc:
        assert exc.source == str(path) and exc.reason
        return
    for paper in papers:
        _check_storable(paper)


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize(
    ("suffix", "files"),
    [(".jsonl", jsonl_files()), (".csv", csv_files()), (".xml", atom_files()), (".txt", dumps)],
)
def test_only_ingest_errors_escape_a_parser(
    tmp_path: Path, suffix: str, files: st.SearchStrategy[bytes]
) -> None:
    @FUZZ
    @given(content=st.one_of(files, raw_bytes))
    def run(content: bytes) -> None:
        _parse(tmp_path, suffix, content)

    run()
