"""JSON Lines paper files: one JSON object per line.

Fields: ``id`` (str, required), ``title`` (str, required, non-empty), ``abstract`` (str),
``authors`` and ``categories`` (lists of str), ``published`` (ISO-8601 date or datetime;
naive values are taken as UTC), ``url`` (str), ``doi`` and ``arxiv_id`` (str, optional).
Optional fields may be absent or null; other fields are ignored. Blank lines are skipped.
:func:`paper_from_fields` is the field checker the CSV reader shares.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from recsys.catalog.keys import normalise_arxiv_id, normalise_doi, read_text
from recsys.domain import IngestError, Paper


def parse_jsonl(path: Path) -> list[Paper]:
    """Parse a JSON Lines paper file.

    Parameters
    ----------
    path : Path
        UTF-8 file, one JSON object per line.

    Returns
    -------
    list of Paper
        In file order; ``external_id`` is the record's ``id``, ``arxiv_id`` is set (without
        version) from ``arxiv_id`` or from an ``id`` that is an arXiv id.

    Raises
    ------
    IngestError
        For the first malformed line (bad JSON, missing or empty title, wrong type, bad
        date, DOI or arXiv id), naming the line and the field; line 0 for a missing file.
    """
    source = str(path)
    papers: list[Paper] = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if line.strip():
            papers.append(_parse_line(line, source, number))
    return papers


def _parse_line(line: str, source: str, number: int) -> Paper:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(source, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        found = type(record).__name__
        raise IngestError(source, number, f"expected a JSON object, found {found}")
    return paper_from_fields(record, source, number, require_id=True)


def paper_from_fields(
    record: Mapping[str, object], source: str, line: int, *, require_id: bool
) -> Paper:
    """Check one record's fields and build its :class:`Paper`.

    Parameters
    ----------
    record : mapping
        Field name to value as described in the module docstring; None means absent.
    source, line : str, int
        Where the record came from, for the paper and for errors.
    require_id : bool
        Whether ``id`` must be present (JSONL) or may be missing (CSV).

    Raises
    ------
    IngestError
        Naming the first bad field and what is wrong with it.
    """
    fields = _Fields(record, source, line)
    external_id = fields.required("id") if require_id else fields.text("id")
    return Paper(
        title=fields.required("title"),
        abstract=fields.text("abstract") or "",
        authors=fields.strings("authors"),
        categories=fields.strings("categories"),
        published=fields.timestamp("published"),
        url=fields.text("url"),
        arxiv_id=fields.arxiv_id(fallback=external_id),
        doi=fields.doi(),
        external_id=external_id,
        source=source,
        line=line,
    )


class _Fields:
    """Typed access to one record's fields; every failure names the field."""

    def __init__(self, record: Mapping[str, object], source: str, line: int) -> None:
        self._record = record
        self._source = source
        self._line = line

    def fail(self, name: str, problem: str) -> IngestError:
        return IngestError(self._source, self._line, f"field {name!r} {problem}")

    def text(self, name: str) -> str | None:
        """The field with whitespace collapsed; None when absent, null or blank."""
        value = self._record.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        return " ".join(value.split()) if value and value.strip() else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.fail(name, "is missing or empty")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._record.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(name, f"must be a list of strings, got {_describe(value)}")
        return tuple(item.strip() for item in value if item.strip())

    def timestamp(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(name, f"is not an ISO-8601 date or datetime: {value!r}") from None
        # Naive stamps are UTC by convention, so ordering across sources stays correct.
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

    def arxiv_id(self, *, fallback: str | None) -> str | None:
        value = self.text("arxiv_id")
        if value is None:
            return normalise_arxiv_id(fallback)
        normalised = normalise_arxiv_id(value)
        if normalised is None:
            raise self.fail("arxiv_id", f"is not an arXiv id: {value!r}")
        return normalised

    def doi(self) -> str | None:
        value = self.text("doi")
        if value is None:
            return None
        normalised = normalise_doi(value)
        if normalised is None:
            raise self.fail("doi", f"is not a DOI (10.<registrant>/<suffix>): {value!r}")
        return normalised


def _describe(value: object) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {', '.join(kinds)}"
    return type(value).__name__


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
