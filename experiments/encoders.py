"""Offline comparison of paper encoders: TF-IDF + SVD against a sentence-transformers model.

Every protocol ranks real candidates by the cosine of encoder vectors (content alone, no
clicks learnt), and every encoder sees the same texts:

- ``seed-title``, ``seed-keywords``, ``seed-sentence``: the seed papers
  (``shared/data/seed-papers``, 494 after de-duplication). The corpus is their abstracts
  (without titles); each paper's query is its title, its title's keywords (the non-stop words,
  lower-cased, sorted: a keyword list without sentence structure), or its abstract's first
  sentence (a free-text description; that sentence is then cut from the paper's own abstract
  in the corpus, so the query never matches itself word for word). The right answer is the
  paper's own abstract among all 494: MRR and recall@1/@10.
- ``citeulike-authors``: the 1,929 citeulike papers that have real title and abstract
  (``partial_text_hebatef/raw-data.csv``) with their authors (``authors.csv``, by CiteULike
  id). Each paper with a co-author elsewhere in the set is a query; the right answers are the
  other papers sharing an author: recall@10 and MRR over the other 1,928. (The published
  citeulike-a protocols cannot be run with a text encoder here: that text is not aligned with
  citeulike-a's paper ids; see ``docs/results.md``.)
- ``synth-topic``, ``synth-clicks``: the synthetic world (:mod:`recsys.synth`), whose texts are
  English templates filled with each topic's phrases. Topic: share of each paper's 10 nearest
  neighbours with its main topic. Clicks: each user's last click held out, the profile the
  mean of their other clicks, recall@10 over every paper they did not click before.

Neural embeddings are cached under ``var/encoder-cache`` (keyed by model and texts): encoding
runs at ~11 abstracts per core-second, so re-running the comparison costs only TF-IDF.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from recsys.catalog.embeddings import TfidfSvdEmbedder
from recsys.catalog.encoders import MINILM, SentenceEncoder, concatenate
from recsys.catalog.keys import dedupe
from recsys.catalog.sources.seedpages import parse_seed_dump
from recsys.synth import generate_world

TFIDF_DIMS: Final = (64, 256)
CONCAT_WEIGHTS: Final = (0.3, 0.5, 0.7)
TOP: Final = 10
# A fixed "now" keeps the synthetic world identical from run to run (never today's date).
SYNTH_NOW: Final = datetime(2026, 1, 1, tzinfo=UTC)
# Small enough to encode in minutes on a shared core (~11 short texts a core-second).
SYNTH_PAPERS: Final = 800
SYNTH_USERS: Final = 200
CACHE_CHUNK: Final = 128

Encode = Callable[[Sequence[str]], NDArray[np.float32]]


@dataclass(frozen=True)
class Retrieval:
    """A retrieval task: query texts, corpus texts, and the relevant corpus rows of each query.

    ``exclude[q]`` are corpus rows never ranked for query q (e.g. the query paper itself).
    """

    name: str
    queries: list[str]
    corpus: list[str]
    relevant: list[NDArray[np.intp]]
    exclude: list[NDArray[np.intp]]


# --- metrics --------------------------------------------------------------------------------
def rank_metrics(
    queries: NDArray[np.float32],
    corpus: NDArray[np.float32],
    relevant: Sequence[NDArray[np.intp]],
    exclude: Sequence[NDArray[np.intp]],
    k: int = TOP,
) -> dict[str, float]:
    """MRR (first relevant), recall@1 and recall@k, averaged over queries, by cosine."""
    scores = queries @ corpus.T
    mrr, r1, rk = [], [], []
    for q, rel in enumerate(relevant):
        row = scores[q].astype(np.float64)
        row[exclude[q]] = -np.inf
        # Rank = 1 + number of strictly better candidates (ties counted in the query's favour
        # would flatter an encoder that gives many texts the same vector, so count them too).
        best = row[rel].max()
        rank = int((row > best).sum() + (row == best).sum() - 1) + 1
        order = np.argsort(-row, kind="stable")[:k]
        hits = np.isin(rel, order)
        mrr.append(1.0 / rank)
        r1.append(float(np.isin(rel, order[:1]).mean()))
        rk.append(float(hits.mean()))
    return {"mrr": _mean(mrr), "recall@1": _mean(r1), f"recall@{k}": _mean(rk)}


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 4) if values else float("nan")


# --- encoders -------------------------------------------------------------------------------
def encoder_variants(
    fit_corpus: Sequence[str], neural: Encode | None
) -> dict[str, tuple[Encode, Encode]]:
    """Name -> (encode corpus, encode queries) for each encoder compared.

    TF-IDF is fitted on ``fit_corpus`` (the documents, as nightly training fits it on the
    papers); concatenations reuse the same parts, weighted as the pipeline weights them.
    """
    variants: dict[str, tuple[Encode, Encode]] = {}
    tfidf = {d: TfidfSvdEmbedder(dim=d, seed=0).fit(fit_corpus) for d in TFIDF_DIMS}
    for d, model in tfidf.items():
        variants[f"tfidf-{d}"] = (model.transform, model.transform)
    if neural is None:
        return variants
    variants[MINILM] = (neural, neural)
    for (d, model), w in itertools.product(tfidf.items(), CONCAT_WEIGHTS):

        def both(texts: Sequence[str], m: TfidfSvdEmbedder = model, w: float = w) -> Any:
            return concatenate(m.transform(texts), neural(texts), w)

        variants[f"tfidf-{d}+minilm w={w}"] = (both, both)
    return variants


def cached(encode: Encode, cache_dir: Path, tag: str, chunk: int = CACHE_CHUNK) -> Encode:
    """``encode`` with results kept in ``cache_dir`` as ``.npy``, one file per ``chunk``
    texts (keyed by tag and their text), so an interrupted run keeps what it encoded."""

    def one_chunk(texts: Sequence[str]) -> NDArray[np.float32]:
        digest = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:20]
        path = cache_dir / f"{tag}-{digest}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
        vectors = encode(texts)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors, allow_pickle=False)
        return vectors

    def run(texts: Sequence[str]) -> NDArray[np.float32]:
        return np.vstack([one_chunk(texts[i : i + chunk]) for i in range(0, len(texts), chunk)])

    return run


def load_neural(cache_dir: Path, source: str = MINILM) -> Encode | None:
    """The cached neural encoder, or None when the ``semantic`` extra is not installed."""
    try:
        model = SentenceEncoder(source)
    except RuntimeError:
        return None
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", source)[-60:]
    return memoised(cached(model.transform, cache_dir, tag))


def memoised(encode: Encode) -> Encode:
    """``encode`` that remembers each text's row, so a text met again is never re-encoded
    (the citeulike queries are rows of its corpus)."""
    memo: dict[str, NDArray[np.float32]] = {}

    def run(texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            memo.update(zip(missing, encode(missing), strict=True))
        return np.stack([memo[t] for t in texts])

    return run


# --- datasets -------------------------------------------------------------------------------
def seed_tasks(seed_dir: Path) -> list[Retrieval]:
    """The three seed-paper query tasks (see the module docstring)."""
    papers, _ = dedupe([p for f in sorted(seed_dir.glob("*.txt")) for p in parse_seed_dump(f)])
    titles = [p.title for p in papers]
    abstracts = [p.abstract for p in papers]
    n = len(papers)
    own = [np.array([i]) for i in range(n)]
    none = [np.zeros(0, np.intp)] * n
    first, rest = zip(*(_split_first_sentence(a) for a in abstracts), strict=True)
    return [
        Retrieval("seed-title", titles, abstracts, own, none),
        Retrieval("seed-keywords", [_keywords(t) for t in titles], abstracts, own, none),
        Retrieval("seed-sentence", list(first), list(rest), own, none),
    ]


def _keywords(title: str) -> str:
    words = {w for w in re.findall(r"[a-z0-9][a-z0-9-]+", title.lower())}
    return " ".join(sorted(words - ENGLISH_STOP_WORDS))


def _split_first_sentence(abstract: str) -> tuple[str, str]:
    parts = re.split(r"(?<=[.!?])\s+", abstract.strip(), maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[0])


def citeulike_author_task(text_dir: Path) -> Retrieval:
    """Same-author retrieval on the citeulike papers with real text (module docstring)."""
    with (text_dir / "raw-data.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    texts = [f"{r['raw.title']}. {r['raw.abstract']}" for r in rows]
    row_of = {r["citeulike.id"]: i for i, r in enumerate(rows)}
    papers_of: dict[str, set[int]] = defaultdict(set)
    # authors.csv is not UTF-8 (Latin-1 accents); names are only compared, never shown.
    with (text_dir / "authors.csv").open(encoding="latin-1", newline="") as f:
        for record in csv.DictReader(f, delimiter="\t"):
            if record["citeulike_paper_id"] in row_of and record["author"].strip():
                key = record["author"].strip().lower()
                papers_of[key].add(row_of[record["citeulike_paper_id"]])
    coauthored: dict[int, set[int]] = defaultdict(set)
    for group in papers_of.values():
        for i in group:
            coauthored[i] |= group - {i}
    queries = sorted(i for i, others in coauthored.items() if others)
    return Retrieval(
        "citeulike-authors",
        [texts[i] for i in queries],
        texts,
        [np.array(sorted(coauthored[i])) for i in queries],
        [np.array([i]) for i in queries],
    )


def synth_topic_metrics(vectors: NDArray[np.float32], topics: NDArray[np.int32]) -> float:
    """Share of each paper's ``TOP`` nearest other papers that share its main topic."""
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    near = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
    return round(float((topics[near] == topics[:, None]).mean()), 4)


def synth_click_metrics(vectors: NDArray[np.float32], world: Any) -> float:
    """Recall@TOP of each user's last click from the mean of their earlier clicks."""
    by_user: dict[int, list[int]] = defaultdict(list)
    for u, p in zip(world.events_user.tolist(), world.events_paper.tolist(), strict=True):
        by_user[u].append(p)  # events are sorted by time
    hits = []
    for clicks in by_user.values():
        if len(clicks) < 2 or clicks[-1] in clicks[:-1]:
            continue
        profile = vectors[clicks[:-1]].mean(axis=0)
        scores = vectors @ profile
        scores[clicks[:-1]] = -np.inf
        hits.append(float(clicks[-1] in np.argsort(-scores, kind="stable")[:TOP]))
    return _mean(hits)


# --- the comparison -------------------------------------------------------------------------
def run_retrieval(task: Retrieval, neural: Encode | None) -> dict[str, dict[str, float]]:
    """Metrics of every encoder on one retrieval task."""
    out = {}
    for name, (encode_corpus, encode_queries) in encoder_variants(task.corpus, neural).items():
        corpus, queries = encode_corpus(task.corpus), encode_queries(task.queries)
        out[name] = rank_metrics(queries, corpus, task.relevant, task.exclude)
    return out


def run_synth(neural: Encode | None) -> dict[str, dict[str, float]]:
    """Topic agreement and held-out click recall on the synthetic world, per encoder."""
    world = generate_world(SYNTH_USERS, SYNTH_PAPERS, seed=0, now=SYNTH_NOW)
    texts = [p.text for p in world.papers]
    out = {}
    for name, (encode, _) in encoder_variants(texts, neural).items():
        vectors = encode(texts)
        out[name] = {
            "topic@10": synth_topic_metrics(vectors, world.paper_topics),
            "click recall@10": synth_click_metrics(vectors, world),
        }
    return out


def compare_encoders(
    data_dir: Path, cache_dir: Path, *, datasets: Sequence[str] = ("seed", "citeulike", "synth")
) -> dict[str, Any]:
    """Every protocol's numbers for every encoder; the neural ones only with the extra.

    Returns ``{"neural": bool, "protocols": {protocol: {encoder: {metric: value}}}}``.
    """
    neural = load_neural(cache_dir)
    protocols: dict[str, dict[str, dict[str, float]]] = {}
    if "seed" in datasets:
        for task in seed_tasks(data_dir / "seed-papers"):
            protocols[task.name] = run_retrieval(task, neural)
    if "citeulike" in datasets:
        task = citeulike_author_task(data_dir / "citeulike-a" / "partial_text_hebatef")
        protocols[f"{task.name} ({len(task.queries)} queries)"] = run_retrieval(task, neural)
    if "synth" in datasets:
        protocols["synth"] = run_synth(neural)
    return {"neural": neural is not None, "protocols": protocols}
