"""JSON Lines paper files: the happy path, the round trip, and each way a line is refused."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from recsys.catalog.sources.jsonl import parse_jsonl, write_jsonl
from recsys.domain import IngestError, Paper

FULL = {
    "id": "2401.01234v2",
    "title": "  Deep   Nets ",
    "abstract": "An abstract.",
    "authors": ["Ada Lovelace", "Alan Turing"],
    "categories": ["cs.LG", "stat.ML"],
    "published": "2024-01-02T18:00:00",
    "url": "https://arxiv.org/abs/2401.01234",
    "doi": "https://doi.org/10.1000/ABC",
}


def _write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "papers.jsonl"
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _error(path: Path) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_jsonl(path)
    return caught.value


def test_a_full_record_becomes_a_normalised_paper(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL)
    assert parse_jsonl(path) == [
        Paper(
            title="Deep Nets",
            abstract="An abstract.",
            authors=("Ada Lovelace", "Alan Turing"),
            categories=("cs.LG", "stat.ML"),
            published=datetime(2024, 1, 2, 18, 0, tzinfo=UTC),
            url="https://arxiv.org/abs/2401.01234",
            arxiv_id="2401.01234",
            doi="10.1000/abc",
            external_id="2401.01234v2",
            source=str(path),
            line=1,
        )
    ]


def test_a_minimal_record_needs_only_id_and_title(tmp_path: Path) -> None:
    (paper,) = parse_jsonl(_write(tmp_path, {"id": "W1", "title": "T", "url": None}))
    assert (paper.external_id, paper.arxiv_id, paper.abstract, paper.authors) == (
        "W1",
        None,
        "",
        (),
    )


def test_an_explicit_arxiv_id_wins_over_the_id(tmp_path: Path) -> None:
    record = {"id": "W1", "title": "T", "arxiv_id": "arXiv:2401.00001v3"}
    (paper,) = parse_jsonl(_write(tmp_path, record))
    assert paper.arxiv_id == "2401.00001"


def test_dates_and_offsets_are_read_as_iso_8601(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"id": "a", "title": "T", "published": "2024-03-01"},
        {"id": "b", "title": "T", "published": "2024-03-01T10:00:00Z"},
        {"id": "c", "title": "T", "published": "2024-03-01T10:00:00+02:00"},
    )
    stamps = [paper.published for paper in parse_jsonl(path)]
    assert stamps == [
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 1, 10, tzinfo=UTC),
        datetime(2024, 3, 1, 10, tzinfo=timezone(timedelta(hours=2))),
    ]


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, {"id": "a", "title": "A"}, "", "   ", {"id": "b", "title": "B"})
    assert [(p.external_id, p.line) for p in parse_jsonl(path)] == [("a", 1), ("b", 4)]


def test_written_papers_read_back_unchanged(tmp_path: Path) -> None:
    papers = [
        Paper(
            title="Deep Nets",
            abstract="Ab — stract",
            authors=("Ada",),
            categories=("cs.LG",),
            published=datetime(2024, 1, 2, tzinfo=UTC),
            url="https://example.org/1",
            arxiv_id="2401.00001",
            doi="10.1000/x",
            external_id="2401.00001",
        ),
        Paper(title="Untimed", external_id="W2"),
        Paper(title="Only arXiv", arxiv_id="2401.00003"),
    ]
    path = tmp_path / "out" / "papers.jsonl"
    write_jsonl(papers, path)
    expected = [replace(p, source=str(path), line=n) for n, p in enumerate(papers, start=1)]
    # The arXiv id had to stand in for the missing external id, and reads back as one.
    expected[2] = replace(expected[2], external_id="2401.00003")
    assert parse_jsonl(path) == expected
    assert [p.name for p in path.parent.iterdir()] == ["papers.jsonl"]  # no temp file left


def test_writing_a_paper_without_any_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'Nameless' has no external_id, arxiv_id or doi"):
        write_jsonl([Paper(title="Nameless")], tmp_path / "papers.jsonl")
    assert not (tmp_path / "papers.jsonl").exists()


def _record(**fields: object) -> dict[str, object]:
    return {"id": "a", "title": "T", **fields}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON: Expecting property name enclosed in double quotes (column 2)"),
        ('["a list"]', "expected a JSON object, found list"),
        ({"title": "T"}, "field 'id' is missing or empty"),
        ({"id": "a"}, "field 'title' is missing or empty"),
        (_record(title="   "), "field 'title' is missing or empty"),
        (_record(id=7), "field 'id' must be a string, got int"),
        (_record(abstract=["x"]), "field 'abstract' must be a string, got list"),
        (_record(authors="Ada; Alan"), "field 'authors' must be a list of strings, got str"),
        (
            _record(categories=["cs.LG", 3]),
            "field 'categories' must be a list of strings, got a list of int, str",
        ),
        (
            _record(published="yesterday"),
            "field 'published' is not an ISO-8601 date or datetime: 'yesterday'",
        ),
        (_record(published=20240101), "field 'published' must be a string, got int"),
        (_record(doi="nope"), "field 'doi' is not a DOI (10.<registrant>/<suffix>): 'nope'"),
        (_record(arxiv_id="W123"), "field 'arxiv_id' is not an arXiv id: 'W123'"),
    ],
)
def test_a_malformed_line_is_refused_naming_file_line_and_field(
    tmp_path: Path, line: object, reason: str
) -> None:
    path = _write(tmp_path, {"id": "ok", "title": "Fine"}, line)
    error = _error(path)
    assert (error.source, error.line, error.reason) == (str(path), 2, reason)
    assert str(error) == f"{path}:2: {reason}"


def test_a_missing_file_is_refused_at_line_zero(tmp_path: Path) -> None:
    error = _error(tmp_path / "absent.jsonl")
    assert (error.line, error.reason) == (0, "file not found")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "a", "title": "Caf\xe9"}\n'.encode("latin-1"))
    assert _error(path).reason.startswith("not UTF-8 text")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply"),
        (
            '{"id": "a", "title": "t", "x": ' + "9" * 5000 + "}",
            "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion",
        ),
        (
            '{"id": "a", "title": "t\\u0000"}',
            "field 'title' holds the control character U+0000 at character 2",
        ),
        (
            '{"id": "a", "title": "\\udc80x"}',
            "field 'title' holds a lone surrogate U+DC80 at character 1",
        ),
    ],
)
def test_hostile_json_is_refused_at_its_line(tmp_path: Path, line: str, reason: str) -> None:
    path = _write(tmp_path, FULL, line)
    caught = _error(path)
    assert (caught.line, caught.reason) == (2, reason)


def test_a_200_mb_line_is_refused_without_reading_it_into_memory(tmp_path: Path) -> None:
    # A sparse file: 200 MB of NUL bytes on line 2 cost no disk, but would cost memory.
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as out:
        out.write(json.dumps(FULL).encode() + b"\n")
        out.seek(200 * 1024 * 1024, 1)
        out.write(b"\n")
    tracemalloc.start()
    try:
        caught = _error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.line, caught.reason) == (2, "line is over the 4,194,304-byte cap")
    assert peak < 16 * 1024 * 1024


def test_a_javascript_url_is_never_stored_and_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, {**FULL, "url": "javascript:alert(document.domain)//"})
    warnings: list[IngestError] = []
    [paper] = parse_jsonl(path, warn=warnings.append)
    assert paper.url is None
    reason = "field 'url' is not an http(s) URL, dropped: 'javascript:alert(document.domain)//'"
    assert [str(w) for w in warnings] == [f"{path}:1: {reason}"]
