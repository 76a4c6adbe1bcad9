"""Ingestion parsers: paper files and arXiv feeds in, :class:`~recsys.domain.Paper` out.

Pure parsing, no database: storing papers is the ingestion DB layer's job. Every parser
rejects bad input with an :class:`~recsys.domain.IngestError` naming file, line and reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recsys.domain import IngestError, Paper
from recsys.ingest.arxiv import ArxivClient, ArxivError, parse_atom
from recsys.ingest.csvfile import parse_csv
from recsys.ingest.jsonl import parse_jsonl, write_jsonl
from recsys.ingest.keys import (
    dedupe,
    normalise_arxiv_id,
    normalise_doi,
    paper_keys,
    read_text,
    title_fingerprint,
)
from recsys.ingest.seedpages import parse_seed_dump

__all__ = [
    "ArxivClient",
    "ArxivError",
    "dedupe",
    "normalise_arxiv_id",
    "normalise_doi",
    "paper_keys",
    "parse_atom",
    "parse_csv",
    "parse_jsonl",
    "parse_seed_dump",
    "read_papers",
    "title_fingerprint",
    "write_jsonl",
]


def _parse_atom_file(path: Path) -> list[Paper]:
    return parse_atom(read_text(path), str(path))


_PARSERS: dict[str, Callable[[Path], list[Paper]]] = {
    ".jsonl": parse_jsonl,
    ".csv": parse_csv,
    ".xml": _parse_atom_file,
    ".atom": _parse_atom_file,
    ".txt": parse_seed_dump,
}


def read_papers(path: Path) -> list[Paper]:
    """Parse a paper file, choosing the parser by suffix.

    Parameters
    ----------
    path : Path
        ``.jsonl`` (JSON Lines), ``.csv``, ``.xml`` / ``.atom`` (arXiv Atom feed) or
        ``.txt`` (papers-page text dump); the suffix is matched case-insensitively.

    Returns
    -------
    list of Paper
        Every record in file order, duplicates included (see :func:`dedupe`).

    Raises
    ------
    IngestError
        At line 0 for an unsupported suffix or a missing file; otherwise as the parser
        for that format raises.
    """
    path = Path(path)
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise IngestError(
            str(path),
            0,
            f"unsupported file type {path.suffix or '(no suffix)'!r} "
            "(expected .jsonl, .csv, .xml, .atom or .txt)",
        )
    return parser(path)
