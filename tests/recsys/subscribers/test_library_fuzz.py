"""Fuzz the library parser: whatever is pasted, only ``LibraryError`` escapes.

And every reference that comes out can be stored as an interest: no control characters
or lone surrogates, titles within the limit.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.catalog.sources.record import MAX_TITLE_CHARS, text_problem
from recsys.subscribers.library import MAX_NAME_CHARS, LibraryError, parse_library

BIB_PIECES = [
    "@article{", "@set{", "@string{", "@comment{", "@preamble{", "crossref", "title", "author",
    "doi", "eprint", " = ", "{", "}", "(", ")", '"', ",", "#", "\n", " and ", " AND ", "\\", "\\'",
    '\\"', "{\\o}", "\\v{R}", "$", "~", "*", "\x00", "\ud800", "10.1000/x", "2401.01234",
]  # fmt: skip
bibtex = st.lists(st.one_of(st.sampled_from(BIB_PIECES), st.text(max_size=5)), max_size=40).map(
    "".join
)
csl_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["title", "author", "DOI", "URL", "note", "keyword", "given", "family"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
csl = st.lists(csl_values, max_size=4).map(json.dumps)


def _check(text: str) -> None:
    try:
        library = parse_library(text)
    except LibraryError as exc:
        assert exc.where and exc.reason
        return
    for reference in library.references:
        title = reference.seed.title
        assert title is None or (text_problem(title) is None and len(title) <= MAX_TITLE_CHARS)
        names = reference.authors + reference.keywords
        assert all(text_problem(n) is None and len(n) <= MAX_NAME_CHARS for n in names)


@settings(max_examples=300, deadline=None)
@given(st.one_of(bibtex, csl, st.text(max_size=60)))
def test_only_library_errors_escape_the_library_parser(text: str) -> None:
    _check(text)
