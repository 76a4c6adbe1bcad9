"""CSV paper files: header rules, list cells, line numbers, and each refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.catalog.sources.csvfile import parse_csv
from recsys.domain import IngestError, Paper


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "papers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_csv(path)
    return caught.value


def test_a_full_row_becomes_a_normalised_paper(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "id,Title,abstract,authors,categories,published,url,doi,extra\n"
        "2401.01234v1,Deep Nets,An abstract.,Ada Lovelace; Alan Turing,cs.LG;stat.ML,"
        "2024-01-02,https://arxiv.org/abs/2401.01234,doi:10.1000/X,ignored\n",
    )
    assert parse_csv(path) == [
        Paper(
            title="Deep Nets",
            abstract="An abstract.",
            authors=("Ada Lovelace", "Alan Turing"),
            categories=("cs.LG", "stat.ML"),
            published=datetime(2024, 1, 2, tzinfo=UTC),
            url="https://arxiv.org/abs/2401.01234",
            arxiv_id="2401.01234",
            doi="10.1000/x",
            external_id="2401.01234v1",
            source=str(path),
            line=2,
        )
    ]


def test_only_the_title_column_is_required(tmp_path: Path) -> None:
    (paper,) = parse_csv(_write(tmp_path, "title\nJust a Title\n"))
    assert paper == Paper(title="Just a Title", source=paper.source, line=2)


def test_quoted_multiline_cells_keep_the_row_start_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'title,abstract\r\n"First, with comma","Line one\r\nline two"\r\n\r\nSecond,Short\r\n',
    )
    papers = parse_csv(path)
    assert [(p.title, p.abstract, p.line) for p in papers] == [
        ("First, with comma", "Line one line two", 2),
        ("Second", "Short", 5),
    ]


def test_a_byte_order_mark_does_not_hide_the_title_column(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftitle,authors\nT,A;B\n".encode())
    assert parse_csv(path)[0].authors == ("A", "B")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "empty file: expected a header row with a 'title' column"),
        ("name,abstract\nx,y\n", 1, "header has no 'title' column (columns: ['name', 'abstract'])"),
        ("title,Title\nx,y\n", 1, "header repeats column(s) ['title']"),
        ("title,abstract\nA,a\nB,b,extra\n", 3, "row has 3 fields but the header has 2"),
        ("title,abstract\nA,a\n,b\n", 3, "field 'title' is missing or empty"),
        (
            "title,published\nA,2024-13-01\n",
            2,
            "field 'published' is not an ISO-8601 date or datetime: '2024-13-01'",
        ),
        (
            "title,doi\nA,10.1000\n",
            2,
            "field 'doi' is not a DOI (10.<registrant>/<suffix>): '10.1000'",
        ),
        ("title,arxiv_id\nA,W1\n", 2, "field 'arxiv_id' is not an arXiv id: 'W1'"),
    ],
)
def test_a_bad_file_is_refused_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = _write(tmp_path, text)
    error = _error(path)
    assert (error.source, error.line, error.reason) == (str(path), line, reason)


def test_a_missing_file_is_refused_at_line_zero(tmp_path: Path) -> None:
    assert _error(tmp_path / "absent.csv").line == 0


def test_an_unterminated_quote_is_an_error_naming_its_row_not_merged_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, 'id,title\n1,One\n2,"Two\n3,Three\n4,Four\n')
    caught = _error(path)
    assert caught.line == 3
    assert caught.reason == (
        "malformed CSV: a quoted cell opened in the row starting at line 3 is never closed "
        "(the file ended at line 5); close or escape the quote"
    )


def test_text_after_a_closing_quote_is_refused(tmp_path: Path) -> None:
    caught = _error(_write(tmp_path, 'id,title\n1,"One" extra\n'))
    assert (caught.line, caught.reason) == (2, "malformed CSV: ',' expected after '\"'")


def test_a_cell_holding_a_nul_is_refused_naming_the_column(tmp_path: Path) -> None:
    caught = _error(_write(tmp_path, "id,title\n1,Bad\x00Title\n"))
    assert caught.line == 2
    assert caught.reason == "field 'title' holds the control character U+0000 at character 4"
