"""Known answers for the identity keys, and how a batch is deduplicated."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from recsys.catalog.keys import (
    dedupe,
    normalise_arxiv_id,
    normalise_doi,
    paper_keys,
    read_lines,
    title_fingerprint,
)
from recsys.domain import IngestError, Paper


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2401.01234v2", "2401.01234"),
        ("2401.01234", "2401.01234"),
        ("arXiv:2401.01234", "2401.01234"),
        ("http://arxiv.org/abs/2401.01234v3", "2401.01234"),
        ("https://export.arxiv.org/abs/2401.01234", "2401.01234"),
        ("https://arxiv.org/pdf/2401.01234v1.pdf", "2401.01234"),
        ("  0704.0001 ", "0704.0001"),
        ("hep-th/9901001v1", "hep-th/9901001"),
        ("http://arxiv.org/abs/hep-th/9901001v2", "hep-th/9901001"),
        ("MATH.gt/0309136", "math.GT/0309136"),
    ],
)
def test_arxiv_ids_lose_prefix_and_version(raw: str, expected: str) -> None:
    assert normalise_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "W2741809807", "10.1000/xyz", "1234.5678", "2401.123", "hep-th/99"]
)
def test_things_that_are_not_arxiv_ids_give_none(raw: str | None) -> None:
    assert normalise_arxiv_id(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.1000/XYZ.123", "10.1000/xyz.123"),
        ("https://doi.org/10.48550/arXiv.2401.01234", "10.48550/arxiv.2401.01234"),
        ("http://dx.doi.org/10.1145/3292500.3330701", "10.1145/3292500.3330701"),
        ("doi:10.1000/abc", "10.1000/abc"),
        ("DOI: 10.1000/abc", "10.1000/abc"),
    ],
)
def test_dois_are_bare_and_lower_case(raw: str, expected: str) -> None:
    assert normalise_doi(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "not a doi", "11.1000/abc", "10.1000"])
def test_things_that_are_not_dois_give_none(raw: str | None) -> None:
    assert normalise_doi(raw) is None


def test_title_fingerprint_ignores_case_punctuation_and_spacing() -> None:
    a = title_fingerprint("SWIFT:A Scalable lightWeight Infrastructure for Fine-Tuning")
    b = title_fingerprint("SWIFT: A scalable lightweight infrastructure for fine tuning")
    assert a == b == "swiftascalablelightweightinfrastructureforfinetuning"


def test_title_fingerprint_drops_accents_and_folds_compatibility_forms() -> None:
    assert title_fingerprint("Café ﬁne-tuning") == title_fingerprint("cafe FINE tuning")
    assert title_fingerprint("Straße") == "strasse"


def test_title_fingerprint_keeps_words_that_differ() -> None:
    assert title_fingerprint("Swin Transformer") != title_fingerprint("Switch Transformer")
    assert title_fingerprint("?!") == ""


def test_paper_keys_come_strongest_first_and_only_when_present() -> None:
    paper = Paper(title="A Title", arxiv_id="2401.01234v2", doi="https://doi.org/10.1000/X")
    assert paper_keys(paper) == [
        ("arxiv", "2401.01234"),
        ("doi", "10.1000/x"),
        ("title", "atitle"),
    ]
    assert paper_keys(Paper(title="A Title")) == [("title", "atitle")]
    assert paper_keys(Paper(title="...")) == []


def test_revised_abstract_replaces_older_record() -> None:
    old = Paper(title="Deep Nets", abstract="v1 text", arxiv_id="2401.00001", line=1)
    new = Paper(title="Deep Nets (revised)", abstract="v2 text", arxiv_id="2401.00001", line=9)
    unique, skipped = dedupe([old, new])
    assert unique == [new]
    assert skipped == 1


def test_dedupe_keeps_first_seen_order_and_counts_skips() -> None:
    a = Paper(title="Alpha")
    b = Paper(title="Beta")
    a_again = Paper(title="ALPHA!", abstract="newer")
    c = Paper(title="Gamma")
    unique, skipped = dedupe([a, b, a_again, c])
    assert [p.title for p in unique] == ["ALPHA!", "Beta", "Gamma"]
    assert skipped == 1


def test_later_record_keeps_identifiers_it_lacks() -> None:
    old = Paper(title="Deep Nets", doi="10.1000/x", url="https://example.org/a")
    new = Paper(title="Deep nets", abstract="better")
    (merged,), skipped = dedupe([old, new])
    assert merged == Paper(
        title="Deep nets", abstract="better", doi="10.1000/x", url="https://example.org/a"
    )
    assert skipped == 1


def test_a_record_sharing_keys_with_two_groups_merges_them() -> None:
    by_arxiv = Paper(title="One", arxiv_id="2401.00001")
    by_doi = Paper(title="Two", doi="10.1000/two")
    bridge = Paper(title="Three", arxiv_id="2401.00001", doi="10.1000/two")
    later_by_title = Paper(title="two")  # matches the absorbed group's old title key
    unique, skipped = dedupe([by_arxiv, by_doi, bridge, later_by_title])
    assert len(unique) == 1
    assert skipped == 3
    assert unique[0].arxiv_id == "2401.00001" and unique[0].doi == "10.1000/two"


def test_papers_with_no_shared_key_are_all_kept() -> None:
    papers = [Paper(title="A", arxiv_id="2401.00001"), Paper(title="B", arxiv_id="2401.00002")]
    assert dedupe(papers) == (papers, 0)


def test_a_shared_title_does_not_merge_papers_with_different_ids() -> None:
    first = Paper(title="A Survey of Transformers", arxiv_id="2106.04554")
    second = Paper(title="A survey of transformers", arxiv_id="2009.06732")
    by_doi = Paper(title="A Survey of Transformers", doi="10.1000/other")
    unique, skipped = dedupe([first, second, by_doi])
    assert [p.arxiv_id for p in unique] == ["2106.04554", "2009.06732"]
    assert unique[1].doi == "10.1000/other"  # no conflict with the latest same-title paper
    assert skipped == 1


# read_lines: the one reader of input files ---------------------------------------------------


def _lines(path: Path, **caps: int) -> list[tuple[int, str]]:
    return list(read_lines(path, **caps))


def test_lines_are_numbered_split_on_newline_only_and_lose_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes("\ufeffone\x0ctwo\r\nthree".encode())
    assert _lines(path) == [(1, "one\x0ctwo\r\n"), (2, "three")]


def test_a_line_over_the_cap_is_refused_at_its_number(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"short\n" + b"x" * 101 + b"\nafter\n")
    with pytest.raises(IngestError) as caught:
        _lines(path, max_line_bytes=100)
    assert (caught.value.line, caught.value.reason) == (2, "line is over the 100-byte cap")


def test_a_file_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"a\n" * 60)
    with pytest.raises(IngestError) as caught:
        _lines(path, max_file_bytes=100)
    assert caught.value.line == 0
    assert caught.value.reason == (
        "file is 120 bytes, over the 100-byte cap; split it into smaller files"
    )


def test_bytes_that_are_not_utf8_are_refused_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"title\nok\nbad \xff byte\n")
    with pytest.raises(IngestError) as caught:
        _lines(path)
    assert (caught.value.line, caught.value.reason) == (
        3,
        "not UTF-8 text (invalid start byte at byte 5 of the line)",
    )


@pytest.mark.parametrize(
    ("make", "reason"), [(None, "file not found"), ("dir", "is a directory, not a file")]
)
def test_a_missing_file_or_a_directory_is_refused_at_line_zero(
    tmp_path: Path, make: str | None, reason: str
) -> None:
    path = tmp_path / "x.jsonl"
    if make:
        path.mkdir()
    with pytest.raises(IngestError) as caught:
        _lines(path)
    assert (caught.value.line, caught.value.reason) == (0, reason)


def test_title_fingerprint_keeps_exactly_the_letters_and_digits_of_every_code_point() -> None:
    # The fingerprint drops with one regular expression; its definition is str.isalnum()
    # after folding. Checked on ASCII (the fast path), the Latin, Greek, Cyrillic, symbol and
    # punctuation blocks, ligatures and full-width forms.
    points = [*range(0x3000), *range(0xFB00, 0xFB50), *range(0xFF00, 0xFFF0)]
    for char in map(chr, points):
        folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
        expected = "".join(ch for ch in folded if ch.isalnum())
        assert title_fingerprint(f"a{char}_b") == f"a{expected}b", hex(ord(char))
