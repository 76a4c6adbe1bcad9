"""Run an experiment: fit every variant per seed and fold, rank in full, keep per-user metrics.

A *fold* is one ranking situation: the citeulike-a or generic protocol (one fold), or one
replayed day of the synthetic world (``days`` folds, see :func:`temporal_folds`). For each
seed and fold every variant is fitted on the fold's training events, then ranks all the
fold's candidates for every user with a relevant one (full ranking, never sampled
negatives; each user's own training papers excluded), in blocks of users. Per-user metric
values are pooled over folds (a user's mean over the days they appear in) and seeds, and each
variant is compared with the control user by user (``experiments.stats.compare_all``).

Fitting is shared where it changes nothing: a single-component variant is the component
fitted on the full training data, which is exactly what a blend variant fits for its own
components with the same seed, so it is reused from a blend fitted on the same fold (a
single component's blend weight would not change its ranking either).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from experiments import stats
from experiments.config import DatasetConfig, ExperimentConfig, MetricSpec, VariantConfig
from experiments.evaluation import (
    BLOCK_USERS,
    EvalData,
    Progress,
    fit_models,
    no_progress,
    paper_block,
    training_snapshot,
    user_block,
)
from recsys.recommender import Component, metrics
from recsys.recommender.ranking import top_k

SECONDS_PER_DAY = 86_400.0
CONFIDENCE = 0.95
STAGE_RUNS = "experiment: fit + rank (seed x fold x variant)"
STAGE_RANK = "rank"


@dataclass(frozen=True)
class Fold:
    """One ranking situation.

    Attributes
    ----------
    label : str
        ``"p10"``, or the replayed day (``"2024-05-27"``).
    data : EvalData
        Training events, candidates and the relevant pairs to find.
    popularity : NDArray[np.float64], shape (n_candidates,)
        Share of users who interacted with each candidate anywhere in the logged data
        (training and test): what novelty measures recommendations against. No model sees it.
    """

    label: str
    data: EvalData
    popularity: NDArray[np.float64]


@dataclass
class FoldRun:
    """One variant on one fold and seed: per-user values, coverage, how weights were set."""

    users: NDArray[np.int64]
    per_user: dict[str, NDArray[np.float64]]
    coverage: dict[str, float]
    blend: dict[str, Any] | None
    fit_s: float
    rank_s: float


@dataclass
class Results:
    """Everything a report needs; ``experiments.report`` writes it out as JSON.

    Attributes
    ----------
    users : NDArray[np.int64]
        User rows of the dataset with at least one relevant candidate in some fold; the
        per-user vectors below are aligned with it.
    per_user : dict
        ``{metric: {variant: values}}``, each user's value averaged over folds and seeds.
    per_seed : dict
        ``{metric: {variant: [mean per seed]}}``, per-user metrics and coverage alike.
    intervals : dict
        ``{metric: {variant: (low, high)}}``: bootstrap interval of the mean over users.
    comparisons : list of stats.Comparison
        Every non-control variant against the control, per per-user metric, Holm-corrected.
    folds : list of dict
        Per fold: ``label``, ``n_users`` and ``{metric: {variant: mean over seeds}}``.
    """

    config: ExperimentConfig
    users: NDArray[np.int64]
    per_user: dict[str, dict[str, NDArray[np.float64]]]
    per_seed: dict[str, dict[str, list[float]]]
    intervals: dict[str, dict[str, tuple[float, float]]]
    comparisons: list[stats.Comparison]
    folds: list[dict[str, Any]]
    blend: dict[str, list[dict[str, Any]]]
    seconds: dict[str, Any]
    dataset: dict[str, Any] = field(default_factory=dict)


# --- the run --------------------------------------------------------------------------------
def run_experiment(config: ExperimentConfig, progress: Progress = no_progress) -> Results:
    """Fit, rank and measure every variant on every fold for every seed, then compare.

    Returns
    -------
    Results
        Per-user vectors, per-seed means, bootstrap intervals, the paired comparisons with
        the control, per-fold curves and timings.
    """
    started = time.perf_counter()
    # implicit, LightFM and scikit-learn parallelise themselves; BLAS threads inside their
    # loops oversubscribe the cores (see experiments.evaluation.run_evaluation).
    with threadpool_limits(1, "blas"):
        progress("load data", 0, 1)
        folds, dataset = load_folds(config.dataset)
        progress("load data", 1, 1)
        load_s = time.perf_counter() - started
        runs = _run_all(config, folds, progress)
    results = _collect(config, folds, runs)
    results.dataset = dataset
    results.seconds["load"] = round(load_s, 2)
    results.seconds["total"] = round(time.perf_counter() - started, 2)
    return results


RunKey = tuple[int, int, str]  # (seed, fold index, variant)


def _run_all(
    config: ExperimentConfig, folds: list[Fold], progress: Progress
) -> dict[RunKey, FoldRun]:
    total = len(config.seeds) * len(folds) * len(config.variants)
    runs: dict[RunKey, FoldRun] = {}
    progress(STAGE_RUNS, 0, total)
    for seed in config.seeds:
        for index, fold in enumerate(folds):
            for variant, run in _run_fold(config, fold, seed, progress):
                runs[(seed, index, variant)] = run
                progress(STAGE_RUNS, len(runs), total)
    return runs


def _run_fold(
    config: ExperimentConfig, fold: Fold, seed: int, progress: Progress
) -> Iterator[tuple[str, FoldRun]]:
    """Every variant on one fold; blends first, so single components can reuse their fits."""
    cache: dict[str, Component] = {}
    order = sorted(config.variants, key=lambda v: len(v.components) == 1)
    for variant in order:
        started = time.perf_counter()
        model, blend = _fit_variant(variant, fold.data, seed, cache, progress)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        users, per_user, coverage = evaluate_fold(model, fold, config.metrics, progress)
        rank_s = time.perf_counter() - started
        yield variant.name, FoldRun(users, per_user, coverage, blend, fit_s, rank_s)


def _fit_variant(
    variant: VariantConfig,
    data: EvalData,
    seed: int,
    cache: dict[str, Component],
    progress: Progress,
) -> tuple[Component, dict[str, Any] | None]:
    if len(variant.components) == 1:
        key = _cache_key(variant.components[0], variant.params)
        if key not in cache:
            (component,) = variant.make_components(seed)()
            cache[key] = component.fit(training_snapshot(data))
        return cache[key], None
    fitted = fit_models(data, variant.make_components(seed), seed=seed, progress=progress)
    hybrid = fitted.hybrid
    for name, component in zip(hybrid.component_names, hybrid.components, strict=True):
        cache.setdefault(_cache_key(name, variant.params), component)
    weights = dict(zip(hybrid.component_names, map(float, hybrid.weights), strict=True))
    return hybrid, {"weights": weights, "source": fitted.weight_source}


def _cache_key(component: str, params: Mapping[str, Mapping[str, Any]]) -> str:
    return f"{component} {json.dumps(params.get(component, {}), sort_keys=True, default=str)}"


# --- ranking and metrics --------------------------------------------------------------------
def evaluate_fold(
    model: Component,
    fold: Fold,
    specs: tuple[MetricSpec, ...],
    progress: Progress = no_progress,
) -> tuple[NDArray[np.int64], dict[str, NDArray[np.float64]], dict[str, float]]:
    """Rank every candidate for every user with a relevant one; per-user metrics and coverage.

    Returns
    -------
    users : NDArray[np.int64]
        User rows ranked (those with at least one relevant candidate).
    per_user : dict
        ``{metric: values aligned with users}`` for every per-user metric in ``specs``.
    coverage : dict
        ``{metric: share of candidates in anyone's top k}`` for every ``coverage@k``.
    """
    data = fold.data
    cols = data.candidate_rows()
    papers = model.paper_vectors(paper_block(data, cols))  # once per model and fold
    exclude = data.train_matrix()[:, cols].tocsr()
    relevant = data.test[:, cols].tocsr()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
    depth = max([spec.k or 1 for spec in specs])
    blocks: list[dict[str, NDArray[np.float64]]] = []
    shown: list[NDArray[np.int32]] = []
    progress(STAGE_RANK, 0, len(users))
    for start in range(0, len(users), BLOCK_USERS):
        rows = users[start : start + BLOCK_USERS]
        scores = model.user_vectors(user_block(data, rows)) @ papers.T
        ranked, _ = top_k(scores, depth, exclude=exclude[rows])
        block = _Block(scores, ranked, relevant[rows], exclude[rows])
        blocks.append(block.metrics(specs, data.embeddings[cols], fold.popularity, data.n_users))
        shown.append(ranked)
        progress(STAGE_RANK, min(start + BLOCK_USERS, len(users)), len(users))
    per_user = {
        spec.name: np.concatenate([b[spec.name] for b in blocks]) if blocks else np.zeros(0)
        for spec in specs
        if spec.per_user
    }
    ranked_all = np.concatenate(shown) if shown else np.zeros((0, depth), np.int32)
    coverage = {
        spec.name: float(metrics.catalogue_coverage(ranked_all[:, : spec.k], len(cols)))
        for spec in specs
        if not spec.per_user
    }
    return users, per_user, coverage


@dataclass
class _Block:
    """One block of users: their scores, ranked columns, relevant and excluded candidates."""

    scores: NDArray[np.float32]
    ranked: NDArray[np.int32]
    relevant: sp.csr_matrix
    exclude: sp.csr_matrix

    def metrics(
        self,
        specs: tuple[MetricSpec, ...],
        embeddings: NDArray[np.float32],
        popularity: NDArray[np.float64],
        n_users: int,
    ) -> dict[str, NDArray[np.float64]]:
        hits = metrics.hit_matrix(self.ranked, self.relevant)
        n_relevant = metrics.count_relevant(self.relevant)
        compute: dict[str, Callable[[int], NDArray[np.float64]]] = {
            "recall": lambda k: metrics.recall_at_k(hits, n_relevant, k),
            "precision": lambda k: metrics.precision_at_k(hits, k),
            "ndcg": lambda k: metrics.ndcg_at_k(hits, n_relevant, k),
            "hit_rate": lambda k: metrics.hit_rate_at_k(hits, k),
            "diversity": lambda k: metrics.intra_list_diversity(self.ranked[:, :k], embeddings),
            "novelty": lambda k: metrics.novelty(self.ranked, popularity, k, n_users=n_users),
        }
        out: dict[str, NDArray[np.float64]] = {}
        for spec in specs:
            if spec.kind == "auc":
                out[spec.name] = metrics.auc(self.scores, self.relevant, exclude=self.exclude)
            elif spec.kind == "mrr":
                out[spec.name] = (
                    metrics.mrr_at_k(hits, spec.k) if spec.k else self.full_reciprocal_rank()
                )
            elif spec.per_user and spec.k is not None:
                out[spec.name] = compute[spec.kind](spec.k)
        return {name: np.asarray(values, np.float64) for name, values in out.items()}

    def full_reciprocal_rank(self) -> NDArray[np.float64]:
        """1 / rank of the first relevant paper in the full ranking, ties as ``top_k`` breaks them.

        ``top_k`` puts the lower column first among equal scores; counting only strictly
        higher scores instead would give a user who scores every paper 0 (a cold user) a
        perfect rank.
        """
        scores = self.scores.astype(np.float32)
        valid = scores > -np.inf  # -inf marks a non-candidate, as in top_k
        coo = self.exclude.tocoo()
        valid[coo.row[coo.data != 0], coo.col[coo.data != 0]] = False
        wanted = (self.relevant.toarray() != 0) & valid
        best = np.where(wanted, scores, -np.inf).max(axis=1, keepdims=True)
        columns = np.arange(scores.shape[1])[None, :]
        first = np.where(wanted & (scores == best), columns, scores.shape[1]).min(axis=1)
        ahead = (scores > best) | ((scores == best) & (columns < first[:, None]))
        rank = (valid & ahead).sum(axis=1) + 1
        return np.where(wanted.any(axis=1), 1.0 / rank, 0.0)


# --- pooling and comparing ------------------------------------------------------------------
def _collect(
    config: ExperimentConfig, folds: list[Fold], runs: Mapping[RunKey, FoldRun]
) -> Results:
    variants = [v.name for v in config.variants]
    per_user_specs = [s for s in config.metrics if s.per_user]
    seeds_pooled = [_pool_seed(config, folds, runs, seed) for seed in config.seeds]
    users = seeds_pooled[0][0]
    per_user = {
        s.name: {v: np.mean([p[1][s.name][v] for p in seeds_pooled], axis=0) for v in variants}
        for s in per_user_specs
    }
    per_seed = _per_seed_means(config, folds, runs, seeds_pooled)
    intervals = {
        metric: {v: _interval(values, config) for v, values in by_variant.items()}
        for metric, by_variant in per_user.items()
    }
    # compare_all drops, pair by pair, users whose value is undefined (NaN) on either side.
    comparisons = stats.compare_all(
        per_user, config.control, test=config.test, n_boot=config.n_boot, seed=0
    )
    return Results(
        config=config,
        users=users,
        per_user=per_user,
        per_seed=per_seed,
        intervals=intervals,
        comparisons=list(comparisons),
        folds=_fold_curves(config, folds, runs),
        blend=_blend_weights(config, folds, runs),
        seconds=_timings(config, runs),
    )


def _pool_seed(
    config: ExperimentConfig, folds: list[Fold], runs: Mapping[RunKey, FoldRun], seed: int
) -> tuple[NDArray[np.int64], dict[str, dict[str, NDArray[np.float64]]]]:
    """Each user's mean over the folds they appear in, for one seed."""
    n_users = max(fold.data.n_users for fold in folds)
    count = np.zeros(n_users)
    for index in range(len(folds)):
        count[runs[(seed, index, config.control)].users] += 1
    users = np.flatnonzero(count > 0).astype(np.int64)
    pooled: dict[str, dict[str, NDArray[np.float64]]] = {}
    for spec in (s for s in config.metrics if s.per_user):
        pooled[spec.name] = {}
        for variant in config.variants:
            total, seen = np.zeros(n_users), np.zeros(n_users)
            for index in range(len(folds)):
                run = runs[(seed, index, variant.name)]
                values = run.per_user[spec.name]
                finite = np.isfinite(values)
                np.add.at(total, run.users[finite], values[finite])
                np.add.at(seen, run.users[finite], 1)
            mean = np.divide(total, seen, out=np.full(n_users, np.nan), where=seen > 0)
            pooled[spec.name][variant.name] = mean[users]
    return users, pooled


def _per_seed_means(
    config: ExperimentConfig,
    folds: list[Fold],
    runs: Mapping[RunKey, FoldRun],
    pooled: list[tuple[NDArray[np.int64], dict[str, dict[str, NDArray[np.float64]]]]],
) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for spec in config.metrics:
        out[spec.name] = {}
        for variant in config.variants:
            if spec.per_user:
                means = [_nanmean(p[1][spec.name][variant.name]) for p in pooled]
            else:  # coverage: a property of a whole fold's lists, averaged over folds
                means = [
                    float(
                        np.mean(
                            [
                                runs[(s, i, variant.name)].coverage[spec.name]
                                for i in range(len(folds))
                            ]
                        )
                    )
                    for s in config.seeds
                ]
            out[spec.name][variant.name] = means
    return out


def _interval(values: NDArray[np.float64], config: ExperimentConfig) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return float("nan"), float("nan")
    low, high = stats.bootstrap_ci(finite, n_boot=config.n_boot, level=CONFIDENCE, seed=0)
    return float(low), float(high)


def _fold_curves(
    config: ExperimentConfig, folds: list[Fold], runs: Mapping[RunKey, FoldRun]
) -> list[dict[str, Any]]:
    curves = []
    for index, fold in enumerate(folds):
        values: dict[str, dict[str, float]] = {}
        for spec in config.metrics:
            values[spec.name] = {}
            for variant in config.variants:
                per_seed = [runs[(seed, index, variant.name)] for seed in config.seeds]
                values[spec.name][variant.name] = float(
                    np.mean(
                        [
                            _nanmean(r.per_user[spec.name])
                            if spec.per_user
                            else r.coverage[spec.name]
                            for r in per_seed
                        ]
                    )
                )
        n_users = len(runs[(config.seeds[0], index, config.control)].users)
        curves.append({"label": fold.label, "n_users": n_users, "values": values})
    return curves


def _blend_weights(
    config: ExperimentConfig, folds: list[Fold], runs: Mapping[RunKey, FoldRun]
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for (seed, index, variant), run in runs.items():
        if run.blend is not None:
            entry = {"seed": seed, "fold": folds[index].label, **run.blend}
            out.setdefault(variant, []).append(entry)
    return out


def _timings(config: ExperimentConfig, runs: Mapping[RunKey, FoldRun]) -> dict[str, Any]:
    variants: dict[str, dict[str, float]] = {}
    for (_, _, variant), run in runs.items():
        spent = variants.setdefault(variant, {"fit": 0.0, "rank": 0.0})
        spent["fit"] += run.fit_s
        spent["rank"] += run.rank_s
    rounded = {v: {k: round(s, 2) for k, s in spent.items()} for v, spent in variants.items()}
    return {"variants": rounded}


def _nanmean(values: NDArray[np.float64]) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


# --- datasets -------------------------------------------------------------------------------
def load_folds(dataset: DatasetConfig) -> tuple[list[Fold], dict[str, Any]]:
    """The folds of a dataset and a short description of it for the report.

    Raises
    ------
    ValueError
        From the dataset's loader, naming the file and line, for unreadable data.
    """
    if dataset.kind == "citeulike":
        return _citeulike_folds(dataset)
    if dataset.kind == "generic":
        return _generic_folds(dataset)
    return temporal_folds(dataset)


def _citeulike_folds(dataset: DatasetConfig) -> tuple[list[Fold], dict[str, Any]]:
    from experiments.citeulike import citeulike_data

    assert dataset.path is not None  # the config reader requires it
    if not dataset.path.is_dir():
        raise ValueError(f"{dataset.path}: no such folder (dataset.path of a citeulike dataset)")
    data = citeulike_data(dataset.path, dataset.split)
    fold = Fold(dataset.split, data, _logged_popularity(data))
    return [fold], _describe(dataset, data, path=str(dataset.path))


def _generic_folds(dataset: DatasetConfig) -> tuple[list[Fold], dict[str, Any]]:
    from experiments import generic

    assert dataset.papers and dataset.train and dataset.test  # the config reader requires them
    papers = generic.read_papers(dataset.papers)
    known = papers.index()
    train = generic.read_interactions(dataset.train, known)
    test = generic.read_interactions(dataset.test, known)
    data = generic.generic_data(papers, train, test, dataset.split)
    fold = Fold(dataset.split, data, _logged_popularity(data))
    return [fold], _describe(dataset, data, papers=str(dataset.papers))


def _logged_popularity(data: EvalData) -> NDArray[np.float64]:
    """Share of users who read each candidate, in training or test: the whole logged record."""
    seen = (data.train_matrix() > 0).astype(np.float64) + (data.test > 0).astype(np.float64)
    readers = np.asarray((seen > 0).sum(axis=0), np.float64).ravel()
    return readers[data.candidate_rows()] / max(data.n_users, 1)


def _describe(dataset: DatasetConfig, data: EvalData, **extra: Any) -> dict[str, Any]:
    return {
        "kind": dataset.kind,
        "split": dataset.split,
        "n_users": data.n_users,
        "n_papers": data.n_papers,
        "n_candidates": len(data.candidate_rows()),
        "n_train_events": len(data.event_user),
        **extra,
    }


def temporal_folds(dataset: DatasetConfig) -> tuple[list[Fold], dict[str, Any]]:
    """Replay the last ``days`` days of a synthetic world, one fold per day.

    Day ``d`` starts at ``now - d days``. Its models train on every click before that moment
    (on papers published before it); its candidates are the papers published during the day;
    a user's relevant papers are the candidates they clicked within ``horizon_days`` of the
    day's start. Models are "trained" at the end of the day, when the digest goes out, so
    paper and event ages are measured from then.
    """
    from recsys.synth import generate_world

    world_config = dataset.world
    assert world_config is not None  # the config reader fills it in
    world = generate_world(
        world_config.n_users,
        world_config.n_papers,
        n_topics=world_config.n_topics,
        clicks_per_user=world_config.clicks_per_user,
        seed=world_config.seed,
        now=world_config.now,
    )
    content = _world_content(world.papers)
    published = np.array([p.published.timestamp() for p in world.papers])  # type: ignore[union-attr]
    clicked = world.events_at.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    events = (world.events_user.astype(np.int64), world.events_paper.astype(np.int64), clicked)
    readers = np.bincount(world.events_paper, minlength=world.n_papers) / max(world.n_users, 1)
    now = world.now.timestamp()
    folds = []
    for back in range(dataset.days, 0, -1):
        start = now - back * SECONDS_PER_DAY
        day = _day_fold(content, published, events, world.n_users, start, dataset.horizon_days)
        label = time.strftime("%Y-%m-%d", time.gmtime(start))
        folds.append(Fold(label, day, readers[day.paper_ids[day.candidate_rows()]]))
    description = {
        "kind": "synthetic",
        "split": "temporal",
        "n_users": world.n_users,
        "n_papers": world.n_papers,
        "n_events": len(world.events_user),
        "days": dataset.days,
        "horizon_days": dataset.horizon_days,
        "world": {k: str(v) for k, v in vars(world_config).items()},
    }
    return folds, description


@dataclass(frozen=True)
class _Content:
    embeddings: NDArray[np.float32]
    features: sp.csr_matrix


def _world_content(papers: list[Any]) -> _Content:
    """TF-IDF + SVD embeddings of text, authors and categories; authors/categories for LightFM.

    The embedder sees only content, never clicks, so fitting it on every paper (future ones
    included) leaks nothing: a new paper's text is known the day it appears.
    """
    from recsys.catalog.embeddings import TfidfSvdEmbedder

    tokens = [
        [f"author_{_slug(a)}" for a in p.authors] + [f"category_{_slug(c)}" for c in p.categories]
        for p in papers
    ]
    texts = [f"{p.text} {' '.join(words)}" for p, words in zip(papers, tokens, strict=True)]
    embeddings = TfidfSvdEmbedder(dim=64, seed=0).fit(texts).transform(texts)
    vocabulary: dict[str, int] = {}
    rows = [row for row, words in enumerate(tokens) for _ in words]
    cols = [vocabulary.setdefault(word, len(vocabulary)) for words in tokens for word in words]
    shape = (len(papers), max(len(vocabulary), 1))
    features = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    return _Content(embeddings.astype(np.float32), features)


def _slug(value: str) -> str:
    return "_".join(value.lower().split())


def _day_fold(
    content: _Content,
    published: NDArray[np.float64],
    events: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    n_users: int,
    start: float,
    horizon_days: float,
) -> EvalData:
    """The :class:`EvalData` of one replayed day (see :func:`temporal_folds`)."""
    end = start + SECONDS_PER_DAY
    rows = np.flatnonzero(published < end)  # papers that exist when the digest goes out
    position = np.full(len(published), -1, np.int64)
    position[rows] = np.arange(len(rows))
    new = (published[rows] >= start).nonzero()[0].astype(np.int64)
    user, paper, at = events
    past = at < start
    label = (at >= start) & (at < start + horizon_days * SECONDS_PER_DAY)
    label &= (published[paper] >= start) & (published[paper] < end)
    test = sp.csr_matrix(
        (np.ones(label.sum(), np.float32), (user[label], position[paper[label]])),
        shape=(n_users, len(rows)),
    )
    test.data[:] = 1.0  # a paper clicked twice is one relevant paper
    return EvalData(
        name=time.strftime("%Y-%m-%d", time.gmtime(start)),
        paper_ids=rows.astype(np.int64),
        embeddings=content.embeddings[rows],
        paper_age_days=((end - published[rows]) / SECONDS_PER_DAY).astype(np.float32),
        event_user=user[past],
        event_paper=position[paper[past]],
        event_weight=np.ones(past.sum(), np.float32),
        event_age_days=((end - at[past]) / SECONDS_PER_DAY).astype(np.float32),
        test=test,
        candidates=new,
        catalogue=(published[rows] < start).nonzero()[0].astype(np.int64),
        features=sp.csr_matrix(content.features[rows]),
        event_order=at[past],
    )
