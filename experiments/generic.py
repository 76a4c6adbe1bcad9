"""The same evaluation on Paperboy's generic formats: a papers JSONL and interaction CSVs.

- ``papers.jsonl``: one JSON object per line with ``id``, ``title``, ``abstract`` and optional
  ``tags``, ``authors``, ``categories`` (lists of strings) and ``published`` (ISO 8601 date).
- ``train.csv`` / ``test.csv``: header ``user_id,paper_id`` and optional ``timestamp`` (ISO
  8601 or Unix seconds) and ``kind`` (``dislike``, ``less``, ``less_like_this``, ``hide`` or
  ``negative`` mark "less like this"; any other kind, or none, is a positive event).

Candidates: ``all`` ranks every paper except the user's training papers; ``unseen`` ranks
only papers absent from the training file (new papers, the digest's situation).

Embedding: the project's ``TfidfSvdEmbedder`` over title, abstract and the tags, authors and
categories written as single tokens (``tag_deep_learning``), so one embedding carries every
field; LightFM also gets the tags, authors and categories as sparse features.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from experiments.evaluation import EvalData, run_evaluation
from recsys.catalog.embeddings import TfidfSvdEmbedder
from recsys.progress import Progress, no_progress

CANDIDATES: Final = ("all", "unseen")
NEGATIVE_KINDS: Final = frozenset({"dislike", "less", "less_like_this", "hide", "negative"})
LIST_FIELDS: Final = ("tags", "authors", "categories")
EMBEDDING_DIM: Final = 128
_SECONDS_PER_DAY: Final = 86_400.0


@dataclass(frozen=True)
class Papers:
    """Papers read from a JSONL file, in file order."""

    ids: list[str]
    texts: list[str]
    fields: dict[str, list[list[str]]]  # tags / authors / categories per paper
    published: NDArray[np.float64]  # Unix seconds, NaN when unknown

    def index(self) -> dict[str, int]:
        """Paper id to row."""
        return {paper_id: row for row, paper_id in enumerate(self.ids)}


@dataclass(frozen=True)
class Interactions:
    """Rows of an interaction CSV, with ids as strings."""

    users: list[str]
    papers: list[str]
    weights: NDArray[np.float32]  # +1, or -1 for "less like this"
    times: NDArray[np.float64]  # Unix seconds, NaN when the file has no timestamp


# --- readers --------------------------------------------------------------------------------
def read_papers(path: Path) -> Papers:
    """Read and check a papers JSONL file.

    Raises
    ------
    ValueError
        Naming the file and line: invalid JSON, a missing ``id`` or ``title``, a duplicate
        id, a list field that is not a list of strings, or an unparsable ``published``.
    """
    ids: list[str] = []
    texts: list[str] = []
    fields: dict[str, list[list[str]]] = {name: [] for name in LIST_FIELDS}
    published: list[float] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _json_object(path, number, line)
            paper_id = _paper_id(path, number, record, seen)
            ids.append(paper_id)
            texts.append(f"{record['title']}. {record.get('abstract') or ''}")
            for name in LIST_FIELDS:
                fields[name].append(_string_list(path, number, record, name))
            published.append(_time(path, number, record.get("published")))
    if not ids:
        raise ValueError(f"{path}: no papers")
    return Papers(ids, texts, fields, np.array(published, np.float64))


def _json_object(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{number}: expected a JSON object")
    return record


def _paper_id(path: Path, number: int, record: dict[str, Any], seen: set[str]) -> str:
    if record.get("id") in (None, "") or not isinstance(record.get("title"), str):
        raise ValueError(f"{path}:{number}: every paper needs an 'id' and a string 'title'")
    paper_id = str(record["id"])
    if paper_id in seen:
        raise ValueError(f"{path}:{number}: duplicate paper id {paper_id!r}")
    seen.add(paper_id)
    return paper_id


def _string_list(path: Path, number: int, record: dict[str, Any], name: str) -> list[str]:
    value = record.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{path}:{number}: '{name}' must be a list of strings")
    return value


def _time(path: Path, number: int, value: Any) -> float:
    """Unix seconds from ISO 8601 text or a number; NaN for a missing value."""
    if value in (None, ""):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{path}:{number}: cannot read time {value!r} (use ISO 8601)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_interactions(path: Path, known_papers: dict[str, int]) -> Interactions:
    """Read an interaction CSV; every paper must be in the papers file.

    Raises
    ------
    ValueError
        Naming the file (and line): a header without ``user_id`` and ``paper_id``, an empty
        id, an unknown paper id or an unparsable timestamp.
    """
    users: list[str] = []
    papers: list[str] = []
    weights: list[float] = []
    times: list[float] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or [])
        if not {"user_id", "paper_id"} <= header:
            raise ValueError(f"{path}: header must include user_id,paper_id; got {sorted(header)}")
        for row in reader:
            number = reader.line_num
            user, paper = (row.get("user_id") or "").strip(), (row.get("paper_id") or "").strip()
            if not user or not paper:
                raise ValueError(f"{path}:{number}: empty user_id or paper_id")
            if paper not in known_papers:
                raise ValueError(f"{path}:{number}: paper {paper!r} is not in the papers file")
            kind = (row.get("kind") or "").strip().lower()
            users.append(user)
            papers.append(paper)
            weights.append(-1.0 if kind in NEGATIVE_KINDS else 1.0)
            times.append(_time(path, number, row.get("timestamp")))
    return Interactions(users, papers, np.array(weights, np.float32), np.array(times))


# --- building the evaluation ----------------------------------------------------------------
def embed(papers: Papers, dim: int = EMBEDDING_DIM, seed: int = 0) -> NDArray[np.float32]:
    """Unit embeddings of title, abstract and the list fields written as tokens."""
    texts = [" ".join([text, *_field_tokens(papers, row)]) for row, text in enumerate(papers.texts)]
    return TfidfSvdEmbedder(dim=dim, seed=seed).fit(texts).transform(texts)


def _field_tokens(papers: Papers, row: int) -> list[str]:
    tokens = []
    for name in LIST_FIELDS:
        prefix = name.rstrip("s")
        tokens += [f"{prefix}_{_slug(value)}" for value in papers.fields[name][row]]
    return tokens


def _slug(value: str) -> str:
    return re.sub(r"\W+", "_", value.strip().lower()).strip("_") or "blank"


def field_features(papers: Papers) -> sp.csr_matrix | None:
    """0/1 matrix of every tag, author and category value (None if no paper has any)."""
    vocabulary: dict[tuple[str, str], int] = {}
    rows, cols = [], []
    for name in LIST_FIELDS:
        for row, values in enumerate(papers.fields[name]):
            for value in set(map(_slug, values)):
                rows.append(row)
                cols.append(vocabulary.setdefault((name, value), len(vocabulary)))
    if not vocabulary:
        return None
    shape = (len(papers.ids), len(vocabulary))
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def generic_data(
    papers: Papers,
    train: Interactions,
    test: Interactions,
    candidates: str = "all",
    *,
    seed: int = 0,
) -> EvalData:
    """The generic files as :class:`EvalData`.

    "Now" is the latest time in the data (training events or publication dates), so ages are
    measured as they would have been when the model was trained.

    Raises
    ------
    ValueError
        For an unknown ``candidates`` value, or ``unseen`` when every paper is in training.
    """
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates must be one of {', '.join(CANDIDATES)}, got {candidates!r}")
    index = papers.index()
    user_index = _index(train.users + test.users)
    event_user = np.array([user_index[u] for u in train.users], np.int64)
    event_paper = np.array([index[p] for p in train.papers], np.int64)
    now = _now(train.times, papers.published)
    ranked = _candidates(candidates, len(papers.ids), event_paper)
    catalogue = np.unique(event_paper) if ranked is not None else np.arange(len(papers.ids))
    return EvalData(
        name=candidates,
        paper_ids=np.arange(len(papers.ids), dtype=np.int64),
        embeddings=embed(papers, seed=seed),
        paper_age_days=_age_days(papers.published, now),
        event_user=event_user,
        event_paper=event_paper,
        event_weight=train.weights,
        event_age_days=_age_days(train.times, now),
        test=_test_matrix(test, user_index, index),
        candidates=ranked,
        catalogue=catalogue.astype(np.int64),
        features=field_features(papers),
        event_order=None if np.isnan(train.times).all() else np.nan_to_num(train.times),
    )


def _index(values: Iterable[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for value in values:
        index.setdefault(value, len(index))
    return index


def _now(*times: NDArray[np.float64]) -> float:
    known = np.concatenate([t[~np.isnan(t)] for t in times])
    return float(known.max()) if known.size else 0.0


def _age_days(times: NDArray[np.float64], now: float) -> NDArray[np.float32]:
    """Days before ``now``, 0 when unknown (or in the future)."""
    age = np.where(np.isnan(times), 0.0, (now - times) / _SECONDS_PER_DAY)
    return np.maximum(age, 0.0).astype(np.float32)


def _candidates(
    kind: str, n_papers: int, train_papers: NDArray[np.int64]
) -> NDArray[np.int64] | None:
    if kind == "all":
        return None
    unseen = np.setdiff1d(np.arange(n_papers), train_papers)
    if not len(unseen):
        raise ValueError("--candidates unseen: every paper occurs in the training file")
    return unseen.astype(np.int64)


def _test_matrix(
    test: Interactions, users: dict[str, int], papers: dict[str, int]
) -> sp.csr_matrix:
    positive = test.weights > 0  # "less like this" in the test file is not something to find
    rows = [users[u] for u, keep in zip(test.users, positive, strict=True) if keep]
    cols = [papers[p] for p, keep in zip(test.papers, positive, strict=True) if keep]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(users), len(papers))
    )
    matrix.data[:] = 1.0
    return matrix


def run_generic(
    papers_path: Path,
    train_path: Path,
    test_path: Path,
    candidates: str = "all",
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Read the files, fit and blend on the training file, evaluate on the test file."""
    progress("read and embed papers", 0, 1)
    papers = read_papers(papers_path)
    known = papers.index()
    train = read_interactions(train_path, known)
    test = read_interactions(test_path, known)
    if not len(train.users):
        raise ValueError(f"{train_path}: no training interactions")
    data = generic_data(papers, train, test, candidates, seed=seed)
    progress("read and embed papers", 1, 1)
    return run_evaluation(data, seed=seed, progress=progress)
