"""CSV paper files: a header row naming the columns, then one paper per row.

The header must have a ``title`` column; ``id``, ``abstract``, ``authors``,
``categories``, ``published``, ``url``, ``doi`` and ``arxiv_id`` are optional and mean
what they mean in JSON Lines (:mod:`recsys.catalog.sources.jsonl`). ``authors`` and ``categories``
hold several values separated by ``;``. Column names are matched case-insensitively; other
columns are ignored. Empty cells count as absent; blank rows are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from recsys.catalog.keys import read_lines
from recsys.catalog.sources.record import Warn, paper_from_fields
from recsys.domain import IngestError, Paper

LIST_COLUMNS = frozenset({"authors", "categories"})
LIST_SEPARATOR = ";"


def parse_csv(path: Path, *, warn: Warn | None = None) -> list[Paper]:
    """Parse a CSV paper file.

    Parameters
    ----------
    path : Path
        UTF-8 CSV (a BOM is fine) with a header row, read line by line within
        :func:`recsys.catalog.keys.read_lines`' caps.
    warn : callable, optional
        Receives each dropped value (see :func:`~recsys.catalog.sources.record.paper_from_fields`).

    Returns
    -------
    list of Paper
        In file order; ``line`` is the physical line where the row starts.

    Raises
    ------
    IngestError
        For a missing ``title`` column, a row whose field count differs from the header,
        a quote that is never closed or stray text after a closing quote, or a bad value
        (as in JSON Lines), naming the line and the column.
    """
    source = str(path)
    rows = _rows((line for _, line in read_lines(path)), source)
    header = _header(next(rows, None), source)
    return [
        _paper(header, row, source, line, warn)
        for line, row in rows
        if any(cell.strip() for cell in row)
    ]


def _rows(lines: Iterable[str], source: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted cell may span several lines)."""
    # Lines keep their "\n" so the csv module sees newlines inside quoted cells. strict
    # makes an unterminated quote an error at the end of the file instead of one row
    # silently swallowing every row after it, and refuses text after a closing quote.
    reader = csv.reader(lines, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise IngestError(source, start, _csv_reason(exc, start, reader.line_num)) from None
        yield start, row


def _csv_reason(exc: csv.Error, start: int, end: int) -> str:
    if "unexpected end of data" in str(exc):
        return (
            f"malformed CSV: a quoted cell opened in the row starting at line {start} is "
            f"never closed (the file ended at line {end}); close or escape the quote"
        )
    return f"malformed CSV: {exc}" + (f" (row runs to line {end})" if end > start else "")


def _header(first: tuple[int, list[str]] | None, source: str) -> list[str]:
    if first is None:
        raise IngestError(source, 1, "empty file: expected a header row with a 'title' column")
    line, names = first
    header = [name.strip().lower() for name in names]
    if "title" not in header:
        raise IngestError(source, line, f"header has no 'title' column (columns: {names})")
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise IngestError(source, line, f"header repeats column(s) {duplicates}")
    return header


def _paper(header: list[str], row: list[str], source: str, line: int, warn: Warn | None) -> Paper:
    if len(row) != len(header):
        raise IngestError(
            source, line, f"row has {len(row)} fields but the header has {len(header)}"
        )
    record: dict[str, object] = {}
    for name, cell in zip(header, row, strict=True):
        if name in LIST_COLUMNS:
            record[name] = [part for part in cell.split(LIST_SEPARATOR) if part.strip()]
        elif cell.strip():
            record[name] = cell
    return paper_from_fields(record, source, line, require_id=False, warn=warn)
