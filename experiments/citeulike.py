"""citeulike-a: loaders for its file formats and the three published protocols.

Protocols (``shared/data/README.md``):

- ``p1`` / ``p10``: ``splits/cf-{train,test}-{1,10}-users.dat``; every paper except the
  user's training papers is ranked (CTR/CDL "sparse" and "dense" settings).
- ``cold``: ``dropoutnet_split/cold/{train,test,test_item_ids}.csv`` (1-based ids); only
  the 3,396 held-out papers are ranked, and they are never seen in training (DropoutNet).

Content: each paper's tags (``item-tag.dat``) and citation neighbours (``citations.dat``),
TF-IDF weighted and reduced with truncated SVD to one embedding per paper. The partial text
in ``partial_text_hebatef/`` is *not* used: its rows are not citeulike-a's paper ids beyond
the first few (see :func:`read_bag_of_words` and ``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.decomposition import TruncatedSVD

from experiments.evaluation import EvalData, run_evaluation
from recsys.progress import Progress, no_progress

SPLITS: Final = ("cold", "p1", "p10")
EMBEDDING_DIM: Final = 256
# Citation features weigh a little less than tags: a paper has ~14 tags but ~5 citation
# neighbours, so at equal weight the sparser block would dominate the cosine.
CITATION_WEIGHT: Final = 0.7
# idf squared: a tag on 5 papers says far more about a reader than one on 5,000.
IDF_POWER: Final = 2.0


@dataclass(frozen=True)
class Content:
    """Sparse content of every paper.

    Attributes
    ----------
    tags : scipy.sparse.csr_matrix, shape (n_papers, n_tags)
        1 where the paper carries the tag.
    citations : scipy.sparse.csr_matrix, shape (n_papers, n_papers)
        Symmetric 0/1 citation adjacency (an edge either way).
    """

    tags: sp.csr_matrix
    citations: sp.csr_matrix

    @property
    def n_papers(self) -> int:
        """Number of papers."""
        return int(self.tags.shape[0])


# --- file formats ---------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        yield from enumerate(handle, start=1)


def read_lists(path: Path, n_columns: int | None = None) -> sp.csr_matrix:
    """A ``.dat`` file of counted lists (line r: ``n id_1 ... id_n``, 0-based) as 0/1 rows.

    Parameters
    ----------
    path : Path
        e.g. ``users.dat``, ``item-tag.dat``, ``citations.dat``, ``splits/cf-train-1-users.dat``.
    n_columns : int, optional
        Number of columns; defaults to the largest id + 1.

    Raises
    ------
    ValueError
        Naming the file and line, if a count disagrees with the ids that follow it, an id is
        not a non-negative integer, or an id is out of range.
    """
    rows: list[int] = []
    cols: list[int] = []
    n_rows = 0
    for number, line in _lines(path):
        ids = _counted_ids(path, number, line)
        rows.extend([number - 1] * len(ids))
        cols.extend(ids)
        n_rows = number
    width = (max(cols) + 1 if cols else 0) if n_columns is None else n_columns
    if cols and max(cols) >= width:
        raise ValueError(f"{path}: id {max(cols)} is out of range for {width} columns")
    data = np.ones(len(rows), np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, width))
    matrix.data[:] = 1.0  # a repeated id counts once
    return matrix


def _counted_ids(path: Path, number: int, line: str) -> list[int]:
    fields = line.split()
    try:
        values = [int(field) for field in fields]
    except ValueError as exc:
        raise ValueError(f"{path}:{number}: expected integers, got {line.strip()!r}") from exc
    if not values or values[0] != len(values) - 1 or min(values) < 0:
        raise ValueError(
            f"{path}:{number}: expected a count followed by that many non-negative ids, "
            f"got {line.strip()[:80]!r}"
        )
    return values[1:]


def read_pairs(path: Path) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """DropoutNet's ``user,item,1`` CSV (1-based ids) as 0-based (users, papers).

    Raises
    ------
    ValueError
        Naming the file and line, for a malformed row or an id below 1.
    """
    users: list[int] = []
    papers: list[int] = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        try:
            user, paper = int(fields[0]), int(fields[1])
        except (ValueError, IndexError) as exc:
            raise ValueError(
                f"{path}:{number}: expected 'user,item,...', got {line.strip()!r}"
            ) from exc
        if user < 1 or paper < 1:
            raise ValueError(f"{path}:{number}: ids are 1-based, got {user},{paper}")
        users.append(user - 1)
        papers.append(paper - 1)
    return np.array(users, np.int64), np.array(papers, np.int64)


def read_ids(path: Path) -> NDArray[np.int64]:
    """A one-id-per-line file of 1-based paper ids (``test_item_ids.csv``), 0-based and sorted."""
    ids = []
    for number, line in _lines(path):
        if line.strip():
            try:
                value = int(line.strip().split(",")[0])
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: expected an id, got {line.strip()!r}") from exc
            if value < 1:
                raise ValueError(f"{path}:{number}: ids are 1-based, got {value}")
            ids.append(value - 1)
    return np.unique(np.array(ids, np.int64))


def read_bag_of_words(path: Path, n_words: int) -> sp.csr_matrix:
    """``mult.dat`` (line r: ``n word:count ...``) as a (lines, n_words) count matrix.

    In this copy, ``partial_text_hebatef/mult.dat`` has 1,929 lines over the 8,000 words of
    ``vocabulary.dat``; its rows do not line up with citeulike-a's paper ids beyond the first
    few, so the experiment does not use it (``docs/results.md`` shows the check).
    """
    rows: list[int] = []
    cols: list[int] = []
    counts: list[float] = []
    n_rows = 0
    for number, line in _lines(path):
        n_rows = number
        fields = line.split()
        pairs = [field.split(":") for field in fields[1:]]
        if not fields or int(fields[0]) != len(pairs) or any(len(p) != 2 for p in pairs):
            raise ValueError(f"{path}:{number}: expected 'n word:count ...', got {line[:60]!r}")
        rows.extend([number - 1] * len(pairs))
        cols.extend(int(word) for word, _ in pairs)
        counts.extend(float(count) for _, count in pairs)
    return sp.csr_matrix((counts, (rows, cols)), shape=(n_rows, n_words), dtype=np.float32)


# --- content --------------------------------------------------------------------------------
def load_content(data_dir: Path) -> Content:
    """Tags and (symmetrised) citations of every citeulike-a paper."""
    tags = read_lists(data_dir / "item-tag.dat")
    n_papers = tags.shape[0]
    cites = read_lists(data_dir / "citations.dat", n_columns=n_papers)
    if cites.shape[0] != n_papers:
        raise ValueError(
            f"{data_dir}: item-tag.dat has {n_papers} papers but citations.dat {cites.shape[0]}"
        )
    symmetric = sp.csr_matrix((cites + cites.T) > 0, dtype=np.float32)
    return Content(tags, symmetric)


def tfidf(counts: sp.csr_matrix, power: float = IDF_POWER) -> sp.csr_matrix:
    """Rows of ``counts * idf**power``, L2-normalised (idf = log((n + 1) / (df + 1)) + 1)."""
    counts = sp.csr_matrix(counts, dtype=np.float32)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = (np.log((counts.shape[0] + 1) / (df + 1)) + 1) ** power
    return _unit_sparse_rows(sp.csr_matrix(counts @ sp.diags(idf.astype(np.float32))))


def content_features(content: Content) -> sp.csr_matrix:
    """One sparse vector per paper: TF-IDF tags beside TF-IDF citations, L2-normalised.

    A paper counts as citing itself, so two papers linked by a citation share a feature (without
    it only co-citation would relate them, not the citation itself).
    """
    with_self = content.citations + sp.identity(content.n_papers, dtype=np.float32, format="csr")
    blocks = [tfidf(content.tags), CITATION_WEIGHT * tfidf(with_self)]
    return _unit_sparse_rows(sp.hstack(blocks, format="csr"))


def content_embedding(
    features: sp.csr_matrix, dim: int = EMBEDDING_DIM, seed: int = 0
) -> NDArray[np.float32]:
    """Truncated SVD of the content features: unit rows of ``dim`` floats (zero if no content).

    The SVD sees only content, never interactions, so fitting it on every paper (test papers
    included) leaks nothing: a new paper's tags and citations are known when it arrives.
    """
    # A small corpus allows fewer directions than asked for (SVD needs dim < both sides).
    dim = max(1, min(dim, features.shape[0] - 1, features.shape[1] - 1))
    svd = TruncatedSVD(dim, algorithm="randomized", n_iter=4, random_state=seed)
    reduced = svd.fit_transform(features).astype(np.float32)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return np.divide(reduced, norms, out=np.zeros_like(reduced), where=norms > 1e-6)


def _unit_sparse_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)


# --- protocols ------------------------------------------------------------------------------
def load_split(
    data_dir: Path, split: str, n_users: int, n_papers: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, NDArray[np.int64] | None]:
    """``(train, test, candidates)`` for a protocol; ``candidates`` is None for p1 / p10.

    Raises
    ------
    ValueError
        For an unknown split name, or files whose ids exceed the dataset.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "cold":
        folder = data_dir / "dropoutnet_split" / "cold"
        train = _pairs_matrix(folder / "train.csv", n_users, n_papers)
        test = _pairs_matrix(folder / "test.csv", n_users, n_papers)
        candidates = read_ids(folder / "test_item_ids.csv")
        _check_cold(folder, train, candidates, n_papers)
        return train, test, candidates
    p = split[1:]
    train = read_lists(data_dir / "splits" / f"cf-train-{p}-users.dat", n_columns=n_papers)
    test = read_lists(data_dir / "splits" / f"cf-test-{p}-users.dat", n_columns=n_papers)
    return _rows(train, n_users), _rows(test, n_users), None


def _pairs_matrix(path: Path, n_users: int, n_papers: int) -> sp.csr_matrix:
    users, papers = read_pairs(path)
    if len(users) and (users.max() >= n_users or papers.max() >= n_papers):
        raise ValueError(f"{path}: ids exceed {n_users} users / {n_papers} papers")
    matrix = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, papers)), shape=(n_users, n_papers)
    )
    matrix.data[:] = 1.0
    return matrix


def _rows(matrix: sp.csr_matrix, n_users: int) -> sp.csr_matrix:
    """Pad (or check) a per-user list file to ``n_users`` rows."""
    if matrix.shape[0] > n_users:
        raise ValueError(f"split has {matrix.shape[0]} users but the dataset {n_users}")
    pad = sp.csr_matrix((n_users - matrix.shape[0], matrix.shape[1]), dtype=np.float32)
    return sp.csr_matrix(sp.vstack([matrix, pad]))


def _check_cold(
    folder: Path, train: sp.csr_matrix, candidates: NDArray[np.int64], n_papers: int
) -> None:
    if candidates.size and candidates.max() >= n_papers:
        raise ValueError(f"{folder}/test_item_ids.csv: ids exceed {n_papers} papers")
    seen = np.zeros(n_papers, bool)
    seen[train.indices] = True
    if seen[candidates].any():
        raise ValueError(f"{folder}: {int(seen[candidates].sum())} cold papers occur in train.csv")


def citeulike_data(
    data_dir: Path,
    split: str,
    *,
    embeddings: NDArray[np.float32] | None = None,
    content: Content | None = None,
) -> EvalData:
    """One citeulike-a protocol as :class:`EvalData` (content and embedding built if not given)."""
    content = load_content(data_dir) if content is None else content
    if embeddings is None:
        embeddings = content_embedding(content_features(content))
    n_users = read_lists(data_dir / "users.dat", n_columns=content.n_papers).shape[0]
    train, test, candidates = load_split(data_dir, split, n_users, content.n_papers)
    coo = train.tocoo()
    catalogue = np.unique(coo.col) if candidates is not None else np.arange(content.n_papers)
    return EvalData(
        name=split,
        paper_ids=np.arange(content.n_papers, dtype=np.int64),
        embeddings=embeddings,
        paper_age_days=np.zeros(content.n_papers, np.float32),  # the data has no dates
        event_user=coo.row.astype(np.int64),
        event_paper=coo.col.astype(np.int64),
        event_weight=np.ones(coo.nnz, np.float32),
        event_age_days=np.zeros(coo.nnz, np.float32),
        test=test,
        candidates=candidates,
        catalogue=catalogue.astype(np.int64),
        # Papers are numbered in the order they were first posted to CiteULike (their
        # citeulike ids increase with the row), the only clock this data has: it orders
        # events for the time-based validation split, and is not shown to the models.
        event_order=coo.col.astype(np.float64),
    )


def run_citeulike(
    data_dir: Path,
    splits: tuple[str, ...] = SPLITS,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """Run the protocols ``splits`` (content and embedding built once) and return their results."""
    progress("load citeulike-a content", 0, 1)
    content = load_content(data_dir)
    embeddings = content_embedding(content_features(content), seed=seed)
    progress("load citeulike-a content", 1, 1)
    reports = []
    for split in splits:
        data = citeulike_data(data_dir, split, embeddings=embeddings, content=content)
        reports.append(run_evaluation(data, seed=seed, progress=progress))
    return reports
