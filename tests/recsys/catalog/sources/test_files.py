"""Choosing the parser by file suffix."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.catalog.sources.files import read_papers
from recsys.domain import IngestError
from recsys.testing.arxiv import atom_entry, atom_feed

ABSTRACT = "We study a problem. Our method works well on every benchmark we tried."


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("papers.jsonl", '{"id": "2401.00001", "title": "Deep Nets"}\n'),
        ("papers.CSV", "title,arxiv_id\nDeep Nets,2401.00001\n"),
        ("feed.xml", atom_feed(atom_entry("2401.00001", "Deep Nets"))),
        ("feed.atom", atom_feed(atom_entry("2401.00001", "Deep Nets"))),
    ],
)
def test_each_suffix_goes_to_its_parser(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    (paper,) = read_papers(path)
    assert (paper.title, paper.arxiv_id, paper.source) == ("Deep Nets", "2401.00001", str(path))


def test_a_text_file_is_read_as_a_seed_dump(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_text(f"Subscribe\n\nDeep Nets\n\n{ABSTRACT}\n", encoding="utf-8")
    (paper,) = read_papers(path)
    assert (paper.title, paper.abstract, paper.line) == ("Deep Nets", ABSTRACT, 3)


def test_an_unknown_suffix_is_refused_with_the_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "papers.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(IngestError) as caught:
        read_papers(path)
    assert (caught.value.source, caught.value.line) == (str(path), 0)
    assert caught.value.reason == (
        "unsupported file type '.json' (expected .jsonl, .csv, .xml, .atom or .txt)"
    )


@pytest.mark.parametrize("name", ["absent.jsonl", "absent.csv", "absent.xml", "absent.txt"])
def test_a_missing_file_is_refused_at_line_zero(tmp_path: Path, name: str) -> None:
    with pytest.raises(IngestError) as caught:
        read_papers(tmp_path / name)
    assert (caught.value.source, caught.value.line, caught.value.reason) == (
        str(tmp_path / name),
        0,
        "file not found",
    )
