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
    refs = parse_bibtex(BIBTEX).references

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


GOOD_ENTRY = "\n@article{good, title={A Good Paper}}\n"


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("@article{a,\n  title = {Open\n}\n\n", "line 6", "line 1 is never closed; add '}'"),
        ("@article{a,\n  title = {never closed\n", "line 2", "'{' is never closed"),
        ("@article{a,\n title = oops,\n}", "line 2", "unknown @string 'oops'"),
        ("@article{a,\n title {X}\n}", "line 2", "expected '=' after field 'title'"),
        ("@article{a,\n year = 2020\n}", "line 1", "no title, DOI or arXiv id"),
        ("@{a, title={X}}", "line 1", "e.g. @article{key, ...}; this entry is skipped"),
        ('@article{a,\n title = "unterminated\n}', "line 2", "'\"' is never closed"),
    ],
)
def test_a_broken_bibtex_entry_is_skipped_with_its_line_and_the_rest_imported(
    text: str, where: str, reason: str
) -> None:
    library = parse_bibtex(text + GOOD_ENTRY)

    assert [r.seed.title for r in library.references] == ["A Good Paper"]
    [skipped] = library.skipped
    assert skipped.where == where
    assert reason in skipped.reason


def test_a_library_with_nothing_importable_is_refused_naming_the_first_problem() -> None:
    with pytest.raises(LibraryError) as caught:
        parse_library("@article{a,\n year = 2020\n}\n@set{s, entryset={a}}")

    assert caught.value.where == "line 1"
    assert caught.value.reason == (
        "@article{a}: no title, DOI or arXiv id to find the paper by "
        "(1 more entries skipped); nothing to import"
    )


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
    refs = parse_csl_json(json.dumps(CSL)).references

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
        ('[{"title": "A"}, {"title": ["A"]}]', "item 2, field 'title'", "expected a string"),
        ('[{"title": "A"}, {"title": "B", "author": "Ann"}]', "item 2, field 'author'", "list"),
        ('[{"title": "A"}, {"title": "B", "author": ["Ann"]}]', "item 2, field 'author[0]'", "an"),
        ('[{"title": "A"}, {"type": "book"}]', "item 2", "no title, DOI or arXiv URL"),
        ('[{"title": "A"}, {"title": "B\\u0000C"}]', "item 2", "control character U+0000"),
        ('[{"title": "A"}, {"title": "\\udc00"}]', "item 2", "lone surrogate U+DC00"),
    ],
)
def test_a_bad_csl_item_is_skipped_naming_the_item_and_field(
    items: str, where: str, reason: str
) -> None:
    library = parse_csl_json(items)

    assert [r.seed.title for r in library.references] == ["A"]
    [skipped] = library.skipped
    assert skipped.where == where
    assert reason in skipped.reason


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ('[{"title": "A"},\n\n {"title": }]', "line 3", "not valid JSON"),
        ("[" * 5000 + "]" * 5000, "CSL-JSON", "nests lists or objects too deeply"),
        ('[{"title": "A", "volume": ' + "9" * 5000 + "}]", "CSL-JSON", "number too long"),
    ],
)
def test_json_that_cannot_be_read_at_all_is_refused(text: str, where: str, reason: str) -> None:
    with pytest.raises(LibraryError) as caught:
        parse_library(text)

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


def test_latex_accents_and_commands_become_unicode() -> None:
    assert latex_to_text(r"R{\o}nnow") == "Rønnow"
    assert latex_to_text(r"{\v R}eh{\r u}{\v r}ek, {\AA}ngstr{\"o}m") == "Řehůřek, Ångström"
    assert latex_to_text(r"{AND\slash OR} graphs in {Cu$_2$O}") == "AND/OR graphs in Cu_2O"


def test_authors_split_on_and_in_any_case_but_not_inside_braces() -> None:
    [ref] = parse_bibtex(
        r"@article{k, title={T}, author={R{\o}nnow, Henrik M. AND Lake, Bella"
        r" And {Barnes and Noble} and others}}"
    ).references

    assert ref.authors == ("Henrik M. Rønnow", "Bella Lake", "Barnes and Noble")


def test_a_title_less_child_takes_title_and_authors_from_its_crossref() -> None:
    library = parse_bibtex(
        "@inproceedings{child, crossref={Parent}, pages={1--2}}\n"
        "@proceedings{parent, title={Proceedings of {IJCAI}}, author={Ada Lovelace},"
        " doi={10.1000/book}}\n"
    )

    child, parent = library.references
    assert child.seed == SeedPaper("Proceedings of IJCAI")  # not the parent's DOI
    assert child.authors == ("Ada Lovelace",)
    assert parent.seed == SeedPaper("Proceedings of IJCAI", doi="10.1000/book")


def test_a_bad_keyword_or_overlong_name_is_dropped_without_losing_the_paper() -> None:
    [ref] = parse_bibtex(
        "@article{k, title={T}, author={" + "x" * 300 + " and Ada}, keywords={ok, \x01bad}}"
    ).references

    assert (ref.authors, ref.keywords) == (("Ada",), ("ok",))


def test_parsing_resumes_at_the_next_line_starting_with_an_at_sign() -> None:
    library = parse_bibtex(
        "@article{a, title = {Never closed\n\n@article{b, title={B}}\n@article{c, title={C}}\n"
    )

    assert [r.seed.title for r in library.references] == ["B", "C"]
    assert [str(s) for s in library.skipped] == [
        "line 1: this value's '{' is never closed; this entry is skipped"
    ]


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
