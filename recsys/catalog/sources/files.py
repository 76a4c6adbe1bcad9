"""Read a paper file of any supported format, choosing the parser by its suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from recsys.catalog.keys import read_text
from recsys.catalog.sources.arxiv import parse_atom
from recsys.catalog.sources.csvfile import parse_csv
from recsys.catalog.sources.jsonl import parse_jsonl
from recsys.catalog.sources.record import Warn
from recsys.catalog.sources.seedpages import parse_seed_dump
from recsys.domain import IngestError, Paper


def _parse_atom_file(path: Path, *, warn: Warn | None = None) -> list[Paper]:
    return parse_atom(read_text(path), str(path), warn=warn)


class _Parser(Protocol):
    def __call__(self, path: Path, *, warn: Warn | None = None) -> list[Paper]: ...


_PARSERS: dict[str, _Parser] = {
    ".jsonl": parse_jsonl,
    ".csv": parse_csv,
    ".xml": _parse_atom_file,
    ".atom": _parse_atom_file,
    ".txt": parse_seed_dump,
}


def read_papers(path: Path, *, warn: Warn | None = None) -> list[Paper]:
    """Parse a paper file, choosing the parser by suffix.

    Parameters
    ----------
    path : Path
        ``.jsonl`` (JSON Lines), ``.csv``, ``.xml`` / ``.atom`` (arXiv Atom feed) or
        ``.txt`` (papers-page text dump); the suffix is matched case-insensitively.
    warn : callable, optional
        Receives an :class:`IngestError` for each value dropped from a record that was
        kept (a non-http(s) ``url``).

    Returns
    -------
    list of Paper
        Every record in file order, duplicates included (see :func:`recsys.catalog.keys.dedupe`).

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
    return parser(path, warn=warn)
