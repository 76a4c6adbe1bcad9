"""What makes two paper records the same paper: arXiv id, DOI, title fingerprint.

Every ingestion source goes through these functions so that a paper seen as an arXiv
listing, a JSONL export and a pasted seed page lands on one row. Also home to the one
file reader the parsers share, so a missing or undecodable file fails the same way
whatever its format.
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import BinaryIO

from recsys.domain import IngestError, Paper

# New-style ids (2007 on) are YYMM.NNNN or YYMM.NNNNN; checking the month keeps arbitrary
# "1234.5678" strings from passing as arXiv ids. Old-style ids are archive[.CLASS]/YYMMNNN.
_NEW_STYLE = r"\d{2}(?:0[1-9]|1[0-2])\.\d{4,5}"
_OLD_STYLE = r"[a-z]+(?:-[a-z]+)*(?:\.[a-z]{2})?/\d{7}"
_ARXIV_ID = re.compile(
    r"(?:arxiv:)?"
    r"(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)?"
    rf"(?P<id>{_NEW_STYLE}|{_OLD_STYLE})"
    r"(?:v\d+)?(?:\.pdf)?/?",
    re.IGNORECASE,
)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_DOI = re.compile(r"10\.\d{4,9}/\S+")
# What a fingerprint drops: ``\W`` is exactly "not str.isalnum() and not underscore", so
# this is the letters-and-digits filter as one C loop (checked against every code point).
_NOT_ALNUM = re.compile(r"[\W_]+")

# A JSON Lines record with a 3,500-name author list and a long abstract is under 1 MB;
# without a cap one 200 MB line held 3 GB of memory as text, dicts and error copies.
MAX_LINE_BYTES = 4 * 1024 * 1024
# Whole files are parsed before anything is stored, so the papers of one file sit in
# memory at once; larger dumps (the 4 GB arXiv metadata snapshot) must be split.
MAX_FILE_BYTES = 256 * 1024 * 1024

KeyKind = str
PaperKey = tuple[KeyKind, str]


def normalise_arxiv_id(raw: str | None) -> str | None:
    """Return the arXiv id in ``raw`` without prefix or version, or None.

    Parameters
    ----------
    raw : str or None
        ``2401.01234v2``, ``arXiv:2401.01234``, ``http://arxiv.org/abs/2401.01234v3``,
        ``https://arxiv.org/pdf/2401.01234v1.pdf`` or an old-style ``hep-th/9901001v1``.

    Returns
    -------
    str or None
        ``2401.01234`` or ``hep-th/9901001`` (archive lower case, subject class upper
        case, as arXiv writes them); None when ``raw`` is not an arXiv id.
    """
    if raw is None:
        return None
    match = _ARXIV_ID.fullmatch(raw.strip())
    if match is None:
        return None
    found = match["id"]
    if "/" not in found:
        return found
    archive, number = found.split("/")
    name, _, subject = archive.partition(".")
    archive = f"{name.lower()}.{subject.upper()}" if subject else name.lower()
    return f"{archive}/{number}"


def normalise_doi(raw: str | None) -> str | None:
    """Return ``raw`` as a bare lower-case DOI (``10.1000/xyz``), or None.

    Strips ``https://doi.org/``, ``https://dx.doi.org/`` and ``doi:`` prefixes. DOIs are
    case-insensitive by definition, so lower-casing makes equal DOIs compare equal.
    """
    if raw is None:
        return None
    bare = _DOI_PREFIX.sub("", raw.strip()).lower()
    return bare if _DOI.fullmatch(bare) else None


def title_fingerprint(title: str) -> str:
    """Reduce a title to the letters and digits that identify it.

    The steps are Unicode's canonical caseless match (NFKD, casefold, NFKD again), then
    dropping every character that is not a letter or digit: punctuation, whitespace and
    the combining accents NFKD split off. So ``"SWIFT:A Scalable ..."`` and
    ``"SWIFT: A scalable ..."`` share a fingerprint, as do ``"Café"`` and ``"Cafe"``.
    Dropping all spaces also merges ``"a bc"`` with ``"ab c"``; accepted, as two distinct
    papers are very unlikely to differ only there.

    Returns
    -------
    str
        The fingerprint; empty when the title has no letters or digits.
    """
    if title.isascii():
        # NFKD leaves ASCII as it is and casefold is lower(): a third of the time.
        return _NOT_ALNUM.sub("", title.lower())
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", title).casefold())
    return _NOT_ALNUM.sub("", folded)


def paper_keys(paper: Paper) -> list[PaperKey]:
    """The identity keys of ``paper``, strongest first.

    Returns
    -------
    list of (kind, value)
        ``("arxiv", id)``, ``("doi", doi)``, ``("title", fingerprint)``, each only when
        the paper has it.
    """
    keys: list[PaperKey] = []
    if paper.arxiv_id:
        # Parsers store normalised ids already; a raw one is kept rather than dropped.
        keys.append(("arxiv", normalise_arxiv_id(paper.arxiv_id) or paper.arxiv_id))
    if paper.doi:
        keys.append(("doi", normalise_doi(paper.doi) or paper.doi.lower()))
    fingerprint = title_fingerprint(paper.title)
    if fingerprint:
        keys.append(("title", fingerprint))
    return keys


def dedupe(papers: Iterable[Paper]) -> tuple[list[Paper], int]:
    """Merge records of one batch that share any identity key.

    A later record wins on content (a revised abstract replaces the older one); fields it
    leaves empty keep the earlier value, so merging never loses an identifier. Sharing is
    transitive: a record with A's arXiv id and B's DOI merges A and B as well. A shared
    title alone does not merge records whose arXiv ids or DOIs differ: those are distinct
    papers that happen to share a title ("A Survey of Transformers").

    Parameters
    ----------
    papers : iterable of Paper
        One ingestion batch, in reading order.

    Returns
    -------
    unique : list of Paper
        One merged paper per group, in the order each group was first seen.
    skipped : int
        How many input records were folded into an earlier one.
    """
    keyed, skipped = dedupe_keyed(papers)
    return [paper for paper, _ in keyed], skipped


def dedupe_keyed(papers: Iterable[Paper]) -> tuple[list[tuple[Paper, dict[KeyKind, str]]], int]:
    """:func:`dedupe`, each unique paper with its :func:`paper_keys` (kind to value), so
    the caller need not compute them again."""
    # Each record's keys are computed once (they were a sixth of a harvest, recomputed for
    # every comparison); a slot's keys change only when records merge into it.
    slots: list[Paper | None] = []
    slot_keys: list[dict[KeyKind, str]] = []
    owner: dict[PaperKey, int] = {}
    count = 0
    for paper in papers:
        count += 1
        keys = dict(paper_keys(paper))
        hits = _matching_slots(keys, slot_keys, owner)
        if hits:
            slot = hits[0]
            for other in hits[1:]:
                _absorb(slots, slot_keys, owner, into=slot, other=other)
            slots[slot] = merge_papers(_filled(slots[slot]), paper)
            slot_keys[slot] = dict(paper_keys(_filled(slots[slot])))
        else:
            slot = len(slots)
            slots.append(paper)
            slot_keys.append(keys)
        for key in slot_keys[slot].items():
            owner[key] = slot
    keyed = [
        (paper, keys) for paper, keys in zip(slots, slot_keys, strict=True) if paper is not None
    ]
    return keyed, count - len(keyed)


def _matching_slots(
    keys: dict[KeyKind, str], slot_keys: list[dict[KeyKind, str]], owner: dict[PaperKey, int]
) -> list[int]:
    """The groups a record with ``keys`` belongs to, earliest first."""
    found: set[int] = set()
    for kind, value in keys.items():
        slot = owner.get((kind, value))
        if slot is None:
            continue
        if kind == "title" and _ids_conflict(slot_keys[slot], keys):
            continue
        found.add(slot)
    return sorted(found)


def _ids_conflict(ours: dict[KeyKind, str], theirs: dict[KeyKind, str]) -> bool:
    """True when both key sets have an arXiv id, or both a DOI, and the two differ."""
    return any(
        kind in ours and kind in theirs and ours[kind] != theirs[kind] for kind in ("arxiv", "doi")
    )


def _absorb(
    slots: list[Paper | None],
    slot_keys: list[dict[KeyKind, str]],
    owner: dict[PaperKey, int],
    into: int,
    other: int,
) -> None:
    """Fold group ``other`` into the earlier group ``into`` (a record bridged them)."""
    slots[into] = merge_papers(_filled(slots[into]), _filled(slots[other]))
    slot_keys[into] = dict(paper_keys(_filled(slots[into])))
    slots[other] = None
    for key, slot in owner.items():
        if slot == other:
            owner[key] = into


def _filled(paper: Paper | None) -> Paper:
    # Only absorbed slots are None, and owner never points at them afterwards.
    assert paper is not None
    return paper


def merge_papers(older: Paper, newer: Paper) -> Paper:
    """``newer`` with its empty fields (None, ``""``, ``()``) taken from ``older``."""
    kept = {
        f.name: getattr(older, f.name)
        for f in fields(Paper)
        if getattr(newer, f.name) in (None, "", ())
    }
    return replace(newer, **kept)


def read_text(path: Path | str) -> str:
    """Read a whole UTF-8 input file (a BOM is ignored), within :func:`read_lines`' caps.

    Raises
    ------
    IngestError
        As :func:`read_lines` does.
    """
    return "".join(line for _, line in read_lines(path))


def read_lines(
    path: Path | str,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 input file, read one at a time (a BOM is ignored).

    Parameters
    ----------
    path : Path or str
        The file.
    max_line_bytes, max_file_bytes : int
        Caps: no more than ``max_line_bytes + 1`` bytes are ever held for one line.

    Yields
    ------
    (int, str)
        The 1-based line number and the line with its ``"\\n"`` (split on ``"\\n"``
        only, so numbers agree with an editor's).

    Raises
    ------
    IngestError
        At line 0 when the file is missing, unreadable or over ``max_file_bytes``; at the
        line that is over ``max_line_bytes``, not UTF-8, or past the file cap.
    """
    source = str(path)
    try:
        with open(path, "rb") as handle:
            _check_file_size(handle.fileno(), source, max_file_bytes)
            yield from _decoded_lines(handle, source, max_line_bytes, max_file_bytes)
    except FileNotFoundError:
        raise IngestError(source, 0, "file not found") from None
    except IsADirectoryError:
        raise IngestError(source, 0, "is a directory, not a file") from None
    except OSError as exc:
        raise IngestError(source, 0, f"cannot read file: {exc.strerror}") from exc


def _check_file_size(fileno: int, source: str, cap: int) -> None:
    size = os.fstat(fileno).st_size
    if size > cap:
        reason = f"file is {size:,} bytes, over the {cap:,}-byte cap; split it into smaller files"
        raise IngestError(source, 0, reason)


def _decoded_lines(
    handle: BinaryIO, source: str, line_cap: int, file_cap: int
) -> Iterator[tuple[int, str]]:
    total = 0
    for number in itertools.count(1):
        raw = handle.readline(line_cap + 1)
        if not raw:
            return
        if len(raw) > line_cap:
            raise IngestError(source, number, f"line is over the {line_cap:,}-byte cap")
        total += len(raw)
        if total > file_cap:  # the file grew while being read
            raise IngestError(source, number, f"file is over the {file_cap:,}-byte cap")
        yield number, _decode(raw, source, number)


def _decode(raw: bytes, source: str, number: int) -> str:
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)"
        raise IngestError(source, number, reason) from None
