import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.subscribers.library import (
    MAX_AUTHORS,
    LibraryError,
    SeedPaper,
    latex_to_text,
    parse_bibtex,
    parse_csl_json,
    parse_library,
    parse_seed,
)

BIBTEX = r"""
% Exported by Zotero; text outside entries is a comment.
@string{neurips = "Advances in Neural Information Processing Systems"}

@article{vaswani2017,
  title = {Attention Is All You {Need}},
  author = {Vaswani, Ashish and Shazeer, Noam and others},
  journal = {arXiv preprint arXiv:1706.03762},
  keywords = {transformers, attention; machine translation},
  year = 2017,
}

@inproceedings{kipf2017,
  title = "Semi-Supervised Classification with Graph Convolutional Networks",
  author = "Thomas N. Kipf and Max Welling",
  booktitle = neurips # " 2017",
  eprint = {1609.02907v4},
  archivePrefix = {arXiv},
  keywords = {graphs, Transformers},
}

@comment{ @article{ignored, title = {Not a paper}} }

@article(godel1931,
  title = {{\"U}ber formal unentscheidbare S{\"a}tze},
  author = {G{\"o}del, Kurt},
  doi = {10.1007/BF01700692}
)

@misc{arxivdoi,
  title = {A Paper With Only An arXiv DOI},
  doi = {10.48550/arXiv.2401.01234},
}
"""


def test_it_reads_titles_authors_keywords_and_ids_from_bibtex() -> None:
    refs = parse_bibtex(BIBTEX)

    assert [r.seed for r in refs] == [
        SeedPaper("Attention Is All You Need", arxiv_id="1706.03762"),
        SeedPaper(
            "Semi-Supervised Classification with Graph Convolutional Networks",
            arxiv_id="1609.02907",
        ),
        SeedPaper("Über formal unentscheidbare Sätze", doi="10.1007/bf01700692"),
        SeedPaper("A Paper With Only An arXiv DOI", arxiv_id="2401.01234"),
    ]
    assert refs[0].authors == ("Ashish Vaswani", "Noam Shazeer")
    assert refs[0].keywords == ("transformers", "attention", "machine translation")
    assert refs[1].authors == ("Thomas N. Kipf", "Max Welling")
    assert refs[2].authors == ("Kurt Gödel",)


def test_a_library_summarises_its_most_frequent_keywords_and_authors() -> None:
    library = parse_library(BIBTEX)

    assert library.keywords[0] == "transformers"  # twice, in two spellings
    assert set(library.keywords) == {"transformers", "attention", "machine translation", "graphs"}
    assert len(library.seeds) == 4


def test_authors_are_capped_at_the_most_frequent() -> None:
    entries = "".join(
        f"@misc{{p{i}, title={{Paper {i}}}, author={{Common, Ann and Author{i}, X}}}}\n"
        for i in range(30)
    )
    library = parse_library(entries)

    assert len(library.authors) == MAX_AUTHORS
    assert library.authors[0] == "Ann Common"


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("@article{a,\n  title = {Open\n}\n\n@article{b, title={B}}", "line 5", "line 1 is never"),
        ("@article{a,\n  title = {never closed\n", "line 2", "'{' is never closed"),
        ("@article{a,\n title = oops,\n}", "line 2", "unknown @string 'oops'"),
        ("@article{a,\n title {X}\n}", "line 2", "expected '=' after field 'title'"),
        ("@article{a,\n year = 2020\n}", "line 1", "no title, DOI or arXiv id"),
        ("@{a, title={X}}", "line 1", "expected an entry type"),
        ('@article{a,\n title = "unterminated\n}', "line 2", "'\"' is never closed"),
    ],
)
def test_malformed_bibtex_names_the_line_and_what_to_fix(
    text: str, where: str, reason: str
) -> None:
    with pytest.raises(LibraryError) as caught:
        parse_bibtex(text)

    assert caught.value.where == where
    assert reason in caught.value.reason


def test_latex_is_turned_into_plain_text() -> None:
    assert (
        latex_to_text(r"Caf\'{e} \& {Cr\`eme} \emph{br\^ul\'ee}~50\%") == "Café & Crème brûlée 50%"
    )


CSL = [
    {
        "type": "article",
        "title": "Attention Is All You Need",
        "author": [{"family": "Vaswani", "given": "Ashish"}, {"literal": "Google Brain"}],
        "URL": "http://arxiv.org/abs/1706.03762v5",
        "number": "arXiv:1706.03762",
        "keyword": "Computer Science - Computation and Language, Transformers",
    },
    {
        "type": "article-journal",
        "title": "Deep learning",
        "author": [{"family": "LeCun", "given": "Yann", "non-dropping-particle": ""}],
        "DOI": "10.1038/nature14539",
    },
    {"type": "webpage", "URL": "https://arxiv.org/pdf/2401.01234v2.pdf"},
]


def test_it_reads_a_zotero_csl_json_export() -> None:
    refs = parse_csl_json(json.dumps(CSL))

    assert [r.seed for r in refs] == [
        SeedPaper("Attention Is All You Need", arxiv_id="1706.03762"),
        SeedPaper("Deep learning", doi="10.1038/nature14539"),
        SeedPaper(None, arxiv_id="2401.01234"),
    ]
    assert refs[0].authors == ("Ashish Vaswani", "Google Brain")
    assert refs[0].keywords == ("Computer Science - Computation and Language", "Transformers")


def test_the_format_is_told_by_the_first_character() -> None:
    assert parse_library("  \n" + json.dumps(CSL[0])).seeds[0].arxiv_id == "1706.03762"
    assert parse_library(BIBTEX).seeds[0].arxiv_id == "1706.03762"


@pytest.mark.parametrize(
    ("items", "where", "reason"),
    [
        ('[{"title": "A"},\n "oops"]', "item 2", "expected a JSON object"),
        ('[{"title": ["A"]}]', "item 1, field 'title'", "expected a string"),
        ('[{"title": "A", "author": "Ann"}]', "item 1, field 'author'", "list of names"),
        ('[{"title": "A", "author": ["Ann"]}]', "item 1, field 'author[0]'", "an object"),
        ('[{"type": "book"}]', "item 1", "no title, DOI or arXiv URL"),
        ('[{"title": "A"},\n\n {"title": }]', "line 3", "not valid JSON"),
    ],
)
def test_malformed_csl_json_names_the_item_and_field(items: str, where: str, reason: str) -> None:
    with pytest.raises(LibraryError) as caught:
        parse_csl_json(items)

    assert caught.value.where == where
    assert reason in caught.value.reason


def test_an_empty_library_says_what_to_paste() -> None:
    with pytest.raises(LibraryError, match="paste a BibTeX file or a CSL-JSON export"):
        parse_library(" \n ")


@pytest.mark.parametrize(
    ("line", "seed"),
    [
        ("1706.03762", SeedPaper(arxiv_id="1706.03762")),
        ("arXiv:1706.03762v7", SeedPaper(arxiv_id="1706.03762")),
        ("https://arxiv.org/abs/hep-th/9901001v1", SeedPaper(arxiv_id="hep-th/9901001")),
        ("https://doi.org/10.1038/NATURE14539", SeedPaper(doi="10.1038/nature14539")),
        ("10.48550/arXiv.2401.01234", SeedPaper(arxiv_id="2401.01234")),
        ("  Attention   Is All You Need ", SeedPaper(title="Attention Is All You Need")),
    ],
)
def test_a_typed_seed_is_an_arxiv_id_a_doi_or_a_title(line: str, seed: SeedPaper) -> None:
    assert parse_seed(line) == seed


# Fuzz: whatever is pasted into the sign-up's library field, only LibraryError escapes. --------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_csl_items = st.dictionaries(
    st.sampled_from(["title", "DOI", "URL", "author", "keyword", "id", "type"]), _json_values
)
_bibtex_pieces = st.lists(
    st.sampled_from(["@article{", "@string{", "@comment{", "title", "=", "{", "}", '"', ",", "#"])
    | st.text(max_size=10),
    max_size=30,
).map("".join)
_nested = st.tuples(st.sampled_from("[{"), st.integers(1, 5000)).map(lambda p: p[0] * p[1])


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.text(),
        _bibtex_pieces,
        st.lists(_csl_items, max_size=5).map(json.dumps),
        _json_values.map(lambda v: json.dumps(v, allow_nan=True)),
        _nested,
        st.integers(4000, 6000).map(lambda n: '[{"title": "T", "n": ' + "9" * n + "}]"),
    )
)
def test_any_pasted_text_is_a_library_or_a_library_error(text: str) -> None:
    try:
        library = parse_library(text)
    except LibraryError as exc:
        assert exc.where and exc.reason  # names where, and says why
        return
    assert all(isinstance(ref.seed, SeedPaper) for ref in library.references)
