"""JSON Lines paper files: one JSON object per line.

Fields: ``id`` (str, required), ``title`` (str, required, non-empty), ``abstract`` (str),
``authors`` and ``categories`` (lists of str), ``published`` (ISO-8601 date or datetime;
naive values are taken as UTC), ``url`` (str), ``doi`` and ``arxiv_id`` (str, optional).
Optional fields may be absent or null; other fields are ignored. Blank lines are skipped.
Fields are checked by :func:`recsys.catalog.sources.record.paper_from_fields`, which every
parser shares.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from recsys.catalog.keys import read_lines
from recsys.catalog.sources.record import Warn, paper_from_fields
from recsys.domain import IngestError, Paper


def parse_jsonl(path: Path, *, warn: Warn | None = None) -> list[Paper]:
    """Parse a JSON Lines paper file.

    Parameters
    ----------
    path : Path
        UTF-8 file, one JSON object per line, read line by line within
        :func:`recsys.catalog.keys.read_lines`' caps.
    warn : callable, optional
        Receives each dropped value (see :func:`~recsys.catalog.sources.record.paper_from_fields`).

    Returns
    -------
    list of Paper
        In file order; ``external_id`` is the record's ``id``, ``arxiv_id`` is set (without
        version) from ``arxiv_id`` or from an ``id`` that is an arXiv id.

    Raises
    ------
    IngestError
        For the first malformed line (bad JSON, nesting too deep, a number too long,
        missing or empty title, wrong type, bad text, date, DOI or arXiv id), naming the
        line and the field; line 0 for a missing file.
    """
    source = str(path)
    papers: list[Paper] = []
    for number, line in read_lines(path):
        if line.strip():
            papers.append(_parse_line(line, source, number, warn))
    return papers


def _parse_line(line: str, source: str, number: int, warn: Warn | None) -> Paper:
    record = _load(line, source, number)
    if not isinstance(record, dict):
        found = type(record).__name__
        raise IngestError(source, number, f"expected a JSON object, found {found}")
    return paper_from_fields(record, source, number, require_id=True, warn=warn)


def _load(line: str, source: str, number: int) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(source, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise IngestError(source, number, "invalid JSON: nested too deeply") from None
    except ValueError as exc:
        # Python refuses integers of over 4,300 digits (a guard against quadratic parsing).
        reason = str(exc).split(":")[0]  # drop the advice to raise the interpreter's limit
        raise IngestError(source, number, f"invalid JSON: {reason}") from None


def write_jsonl(papers: Iterable[Paper], path: Path) -> None:
    """Write ``papers`` in the format :func:`parse_jsonl` reads.

    The file is written to a temporary name beside ``path`` and renamed, so a reader
    never sees half a file. ``id`` is the paper's ``external_id``, else its arXiv id,
    else its DOI.

    Raises
    ------
    ValueError
        If a paper has none of ``external_id``, ``arxiv_id`` and ``doi``.
    """
    text = "".join(json.dumps(paper_record(paper), ensure_ascii=False) + "\n" for paper in papers)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def paper_record(paper: Paper) -> dict[str, object]:
    """One paper as the JSON object :func:`write_jsonl` writes for it."""
    record_id = paper.external_id or paper.arxiv_id or paper.doi
    if not record_id:
        raise ValueError(f"paper {paper.title!r} has no external_id, arxiv_id or doi for 'id'")
    record: dict[str, object] = {
        "id": record_id,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "categories": list(paper.categories),
        "published": paper.published.isoformat() if paper.published else None,
        "url": paper.url,
    }
    if paper.doi:
        record["doi"] = paper.doi
    if paper.arxiv_id:
        record["arxiv_id"] = paper.arxiv_id
    return record
