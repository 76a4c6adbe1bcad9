"""CSV paper files: a header row naming the columns, then one paper per row.

The header must have a ``title`` column; ``id``, ``abstract``, ``authors``,
``categories``, ``published``, ``url``, ``doi`` and ``arxiv_id`` are optional and mean
what they mean in JSON Lines (:mod:`recsys.catalog.sources.jsonl`). ``authors`` and ``categories``
hold several values separated by ``;``. Column names are matched case-insensitively; other
columns are ignored. Empty cells count as absent; blank rows are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from recsys.catalog.keys import read_text
from recsys.catalog.sources.jsonl import paper_from_fields
from recsys.domain import IngestError, Paper

LIST_COLUMNS = frozenset({"authors", "categories"})
LIST_SEPARATOR = ";"


def parse_csv(path: Path) -> list[Paper]:
    """Parse a CSV paper file.

    Parameters
    ----------
    path : Path
        UTF-8 CSV (a BOM is fine) with a header row.

    Returns
    -------
    list of Paper
        In file order; ``line`` is the physical line where the row starts.

    Raises
    ------
    IngestError
        For a missing ``title`` column, a row whose field count differs from the header,
        or a bad value (as in JSON Lines), naming the line and the column.
    """
    source = str(path)
    rows = _rows(read_text(path), source)
    header = _header(next(rows, None), source)
    return [
        _paper(header, row, source, line) for line, row in rows if any(cell.strip() for cell in row)
    ]


def _rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted cell may span several lines)."""
    # newline="" leaves "\r\n" and newlines inside quoted cells for the csv module.
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise IngestError(source, reader.line_num, f"malformed CSV: {exc}") from None
        yield start, row


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


def _paper(header: list[str], row: list[str], source: str, line: int) -> Paper:
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
    return paper_from_fields(record, source, line, require_id=False)
