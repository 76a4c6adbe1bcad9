"""Would ranker B beat what we ship? Off-policy estimates from the service's own logs.

For each logged digest (``recsys.online.logged``) and each variant (a ``RankerConfig``), the
digest's pool is re-ranked with the active model as the scorer would have ranked it at that
instant (events before it only), giving the variant's position marginals ``pi(l, a)``. The
estimators of ``recsys.online.offpolicy`` then weigh the logged clicks.

The logging policy is the **mixture of the logged arms**: users reach the holdout, an
experiment's arm or the defaults by a salted hash of their id, which is as good as a random
draw, so a digest's logging marginal is ``mu(l, a) = sum_k share_k M_k(l, a)`` over the arms
``k`` logged in the window, ``share_k`` their share of the digests. The digest's own arm is
read from the log (shown papers, ``explored`` flags, the pool: exact); the other arms are
re-ranked like the variants. This is what lets a small holdout support any ranker: its
uniform digests put mass on every (position, paper) of every digest.

Positions are padded with an explicit "nothing shown" item, so a variant that shows fewer
papers (a higher relevance bar) is evaluated too; a variant that would show a paper where
no logged arm could is *unsupported* there, and an estimate that leans on unsupported mass is
refused rather than reported (see :func:`support_problem`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from recsys.digests.scoring import (
    Candidates,
    UserContext,
    below_bar,
    candidate_follows,
    ranked_columns,
    reweighted_scores,
    user_relevance,
    without_dislikes,
)
from recsys.online import offpolicy as op
from recsys.online.assignment import RankerConfig
from recsys.online.logged import (
    LoggedDigest,
    candidates_of,
    context_as_of,
    logged_arms,
    stream_logged_digests,
)
from recsys.training.model import Model

ESTIMATORS: dict[str, Callable[..., op.Estimate]] = {
    "ips": op.ips,
    "snips": op.snips,
    "dr": op.doubly_robust,
    "pi": op.pseudo_inverse,
}
MAX_UNSUPPORTED = 0.01  # share of a variant's shown papers no logged arm could have shown
MAX_SLOTS = 50  # a digest holds at most 50 papers (Settings.digest_size)
MIN_ESS = 30.0  # below this many effective digests an interval is not worth printing


# --- Pure: position marginals of a slate policy on one digest's pool -------------------------
def ranked_marginals(
    ranked: NDArray[np.integer],
    n_pool: int,
    size: int,
    config: RankerConfig,
    length: int,
    explorable: NDArray[np.integer] | None = None,
) -> NDArray[np.float64]:
    """``M[l, a]``: probability the arm shows pool item ``a`` at position ``l``.

    Parameters
    ----------
    ranked : NDArray[np.integer]
        Pool-local indices the arm's ranker put first, best first (cleared the bar).
    n_pool : int
        Pool size ``C``; column ``C`` of the result is "nothing shown at ``l``".
    size : int
        The user's digest size ``L``.
    length : int
        Rows of the result (>= ``size``; rows from ``size`` on show nothing).
    config : RankerConfig
        Mirrors ``recsys.digests.exploration``: uniform sample, or ranked head plus
        ``explore_slots`` positions drawn uniformly from the rest of ``explorable``.
    explorable : NDArray[np.integer], optional
        Ascending pool-local items exploration draws from (those above the arm's bar);
        default the whole pool.
    """
    out = np.zeros((length, n_pool + 1))
    if config.uniform:
        n = min(size, n_pool)
        out[:n, :n_pool] = 1.0 / max(n_pool, 1)
        return _with_nothing(out)
    top = np.asarray(ranked, dtype=np.intp)[:size]
    if len(top):
        head = top[: size - min(config.explore_slots, size)]
        out[np.arange(len(head)), head] = 1.0
        rest = _rest(n_pool, head, explorable)
        k = min(config.explore_slots, size, len(rest))
        out[len(head) : len(head) + k, rest] = 1.0 / max(len(rest), 1)
    return _with_nothing(out)


def logged_marginals(
    digest: LoggedDigest, length: int, explorable: NDArray[np.integer] | None = None
) -> NDArray[np.float64]:
    """The digest's own arm's marginals, read from the log.

    The ranked head and every shown paper's propensity are exact whatever the model does
    now. Which other papers an explored slot could have drawn is not logged (the set above
    the arm's bar): ``explorable`` is that set as re-ranked (pool-local, ascending; default
    the whole pool), always with the papers the log shows there, each at its logged
    propensity. When the re-ranking matches the log (``reproduced_share``) this is exact.
    """
    local = _local(digest.pool, digest.shown)
    n_pool = len(digest.pool)
    out = np.zeros((length, n_pool + 1))
    if digest.ranker_config.get("uniform"):
        out[: len(local), :n_pool] = 1.0 / n_pool
        return _with_nothing(out)
    head = ~digest.explored
    out[np.flatnonzero(head), local[head]] = 1.0
    explored = np.flatnonzero(digest.explored)
    if len(explored):
        within = None if explorable is None else np.union1d(explorable, local[explored])
        rest = _rest(n_pool, local[head], within)
        out[explored[:, None], rest[None, :]] = digest.propensity[explored, None]
    return _with_nothing(out)


@dataclass
class DigestTerms:
    """One digest under one variant: what the estimators and the support check read."""

    items: NDArray[np.int64]  # pool-local item at each position, -1 for "nothing"
    clicks: NDArray[np.float64]
    mu: NDArray[np.float64]
    pi: NDArray[np.float64]
    target_mass: NDArray[np.float64]  # P(variant shows a paper at l)
    unsupported: float  # variant's mass on papers at (l, a) no logged arm could show there
    shown_mass: float  # variant's expected number of papers shown
    # Variant's mass on "nothing" at positions every logged arm filled: its reward (0) is
    # known, so IPS and DR need no support for it, but SNIPS's per-position normaliser
    # (E[w] = 1) no longer holds.
    empty_unsupported: float = 0.0


def digest_terms(
    digest: LoggedDigest, target: NDArray[np.float64], mixture: NDArray[np.float64]
) -> DigestTerms:
    """Read both policies' marginals at the logged (position, item) pairs."""
    length, nothing = target.shape[0], target.shape[1] - 1
    local = np.full(length, nothing, dtype=np.intp)
    local[: len(digest.shown)] = _local(digest.pool, digest.shown)
    rows = np.arange(length)
    clicks = np.zeros(length)
    clicks[: len(digest.clicked)] = digest.clicked
    real = target[:, :nothing]
    return DigestTerms(
        items=np.where(local == nothing, -1, local).astype(np.int64),
        clicks=clicks,
        mu=mixture[rows, local],
        pi=target[rows, local],
        target_mass=real.sum(axis=1),
        unsupported=float(real[mixture[:, :nothing] <= 0].sum()),
        shown_mass=float(real.sum()),
        empty_unsupported=float(target[mixture[:, nothing] <= 0, nothing].sum()),
    )


def support_problem(
    estimate: op.Estimate, unsupported_share: float, explore_slots: int, digest_size: int
) -> str | None:
    """Why the logs cannot answer for this variant, with the logging that would; or None."""
    if unsupported_share > MAX_UNSUPPORTED:
        return (
            f"{100 * unsupported_share:.1f}% of the papers this variant would show sit at "
            "positions where no logged policy could have shown them (the ranked head of a "
            f"digest is deterministic: {digest_size - explore_slots} of {digest_size} "
            "positions). Log with a uniform holdout (PAPERBOY_HOLDOUT_SHARE, e.g. 0.05) or "
            f"explore every position (PAPERBOY_EXPLORE_SLOTS={digest_size}), then wait for "
            "the clicks."
        )
    if not estimate.effective_sample_size >= MIN_ESS:
        return (
            f"effective sample size {estimate.effective_sample_size:.1f} < {MIN_ESS:g}: a few "
            "digests carry the estimate. Log longer or with a larger holdout share."
        )
    return None


# --- Re-ranking a chunk of logged digests -----------------------------------------------------
def ranked_pool_columns(
    model: Model,
    context: UserContext,
    candidates: Candidates,
    pools: NDArray[np.bool_],
    sizes: list[int],
    config: RankerConfig,
    min_score: float | None = None,
    strictness: Sequence[str] | None = None,
) -> tuple[list[NDArray[np.int32]], NDArray[np.bool_]]:
    """Each user's ranked candidate columns under ``config``, as ``rank_users`` ranks them
    (both call ``recsys.digests.scoring.ranked_columns``), and where its exploration draws.

    ``pools[i]`` is user ``i``'s pool over ``candidates``; the ranking is cut to ``sizes[i]``.
    ``min_score`` is the base bar (default the model's), ``strictness`` each user's level.
    The mask (users x candidates) is each pool above the config's bar, as in ``rank_users``.
    """
    context, dislikes = without_dislikes(model, context)
    users, papers = context.block, candidates.block
    if config.weights:
        scores = reweighted_scores(model, users, papers, dict(config.weights))
    else:
        scores = model.component.score(users, papers)
    levels = list(strictness) if strictness is not None else ["normal"] * len(sizes)
    base = model.bar.score if min_score is None else min_score
    relevance = user_relevance(model, context, dislikes, candidates, levels, base)
    follows = candidate_follows(context, candidates)
    rows = list(range(len(sizes)))
    _, cols = ranked_columns(scores, relevance, rows, follows, pools, papers, sizes, config)
    explorable = pools & ~below_bar(relevance, rows, *follows, config)
    return [row[row >= 0][:n] for row, n in zip(cols, sizes, strict=True)], explorable


# The per-(digest, position) arrays a variant keeps: shown, clicks, mu, pi, target mass.
_FIELDS = ("shown", "clicks", "mu", "pi", "mass")
_PAD = {"shown": 0.0, "clicks": 0.0, "mu": 1.0, "pi": 1.0, "mass": 0.0}  # "nothing shown"


@dataclass
class Accumulator:
    """A variant's per-digest terms, packed chunk by chunk into float32 blocks.

    A chunk's ``DigestTerms`` objects are dropped once packed: what stays is about 20 bytes
    per (digest, position), plus the user id, for the estimators and the bootstrap.
    """

    blocks: list[dict[str, NDArray[np.float32]]] = field(default_factory=list)
    users: list[NDArray[np.int64]] = field(default_factory=list)
    unsupported: float = 0.0
    shown_mass: float = 0.0
    empty_unsupported: bool = False

    def add_chunk(self, terms: list[tuple[DigestTerms, int]]) -> None:
        if not terms:
            return
        length = max(len(t.items) for t, _ in terms)
        block = {k: np.full((len(terms), length), _PAD[k], dtype=np.float32) for k in _FIELDS}
        for i, (t, _) in enumerate(terms):
            k = len(t.items)
            values = (t.items >= 0, t.clicks, t.mu, t.pi, t.target_mass)
            for name, value in zip(_FIELDS, values, strict=True):
                block[name][i, :k] = value
            self.unsupported += t.unsupported
            self.shown_mass += t.shown_mass
            self.empty_unsupported |= t.empty_unsupported > 0
        self.blocks.append(block)
        self.users.append(np.array([u for _, u in terms], dtype=np.int64))

    def stacked(self) -> dict[str, NDArray[np.float64]]:
        """Every block padded to the longest digest and stacked, (n, L) per field."""
        length = max(b["mu"].shape[1] for b in self.blocks)
        return {
            k: np.concatenate(
                [np.pad(b[k], ((0, 0), (0, length - b[k].shape[1])), constant_values=_PAD[k])
                 for b in self.blocks]
            ).astype(np.float64)
            for k in _FIELDS
        }  # fmt: skip


@dataclass(frozen=True)
class VariantResult:
    """A variant's estimates, support and the verdict."""

    name: str
    config: dict[str, Any]
    estimates: dict[str, dict[str, float]]
    unsupported_share: float
    refused: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_variant(
    name: str,
    config: RankerConfig,
    acc: Accumulator,
    position_ctr: NDArray[np.float64],
    *,
    explore_slots: int,
    digest_size: int,
    rng: np.random.Generator,
    samples: int = 200,
) -> VariantResult:
    """Every estimator on the variant's terms, with a user-bootstrap interval each."""
    logged = to_slates(acc, position_ctr)
    unsupported = acc.unsupported / max(acc.shown_mass, 1e-12)
    groups = np.concatenate(acc.users)
    estimates = {}
    empty_unsupported = acc.empty_unsupported
    for key, estimator in ESTIMATORS.items():
        if key == "snips" and empty_unsupported:
            continue  # biased here (see DigestTerms.empty_unsupported): not reported
        estimate = estimator(logged)
        low, high = _interval(logged, estimator, groups, rng, samples)
        estimates[key] = {**asdict(estimate), "boot_low": low, "boot_high": high}
    problem = support_problem(op.ips(logged), unsupported, explore_slots, digest_size)
    return VariantResult(name, config.as_dict(), estimates, unsupported, problem)


def _interval(
    logged: op.LoggedSlates,
    estimator: Callable[..., op.Estimate],
    groups: NDArray[np.int64],
    rng: np.random.Generator,
    samples: int,
) -> tuple[float, float]:
    if samples <= 0:
        return float("nan"), float("nan")
    return op.bootstrap_interval(logged, estimator, groups, rng, samples=samples)


def to_slates(acc: Accumulator, position_ctr: NDArray[np.float64]) -> op.LoggedSlates:
    """The estimators' input; positions past a digest's end show "nothing" (weight 1)."""
    f = acc.stacked()
    length = f["mu"].shape[1]
    q = np.zeros(length)
    q[: min(length, len(position_ctr))] = position_ctr[:length]
    # The reward model: the logs' click-through at each position, for any paper. Crude, but DR
    # stays unbiased with any model, and this one costs nothing.
    return op.LoggedSlates(
        items=np.where(f["shown"] > 0, 0, -1).astype(np.int64),  # passed through, unread
        clicks=f["clicks"],
        logging_propensity=f["mu"],
        target_propensity=f["pi"],
        reward_model=f["shown"] * q,
        target_expected_reward=(f["mass"] * q).sum(axis=1),
    )


def mixture_shares(
    arms: Mapping[str, tuple[dict[str, Any], int]],
) -> dict[str, tuple[RankerConfig, float]]:
    """Each logged arm's config and share of the digests."""
    total = sum(count for _, count in arms.values())
    return {key: (RankerConfig.parse(cfg), count / total) for key, (cfg, count) in arms.items()}


def chunk_terms(
    model: Model,
    digests: list[LoggedDigest],
    inputs: Iterable[tuple[list[int], UserContext, Candidates]],
    shares: Mapping[str, tuple[RankerConfig, float]],
    variants: Mapping[str, RankerConfig],
) -> tuple[dict[str, list[tuple[DigestTerms, int]]], int]:
    """Every variant's terms for one chunk, and how many digests the re-ranking reproduced.

    ``inputs`` groups digest rows by ranking instant. A digest is *reproduced* when re-ranking
    it with its own arm's config gives exactly the logged marginals: the check that the
    re-ranker, the model and the as-of context are what ranked it.
    """
    out: dict[str, list[tuple[DigestTerms, int]]] = defaultdict(list)
    reproduced = 0
    for rows, context, candidates in inputs:
        group = [digests[r] for r in rows]
        ranked = _rank_group(model, group, context, candidates, shares, variants)
        for i, digest in enumerate(group):
            length = max(digest.digest_size, len(digest.shown))
            arm = {key: _marginals(ranked[key], i, digest, length, cfg)
                   for key, (cfg, _) in shares.items()}  # fmt: skip
            own = logged_marginals(digest, length, ranked[digest.arm][i][1])
            # (np.allclose costs more than the rest of the comparison's work here)
            reproduced += bool(np.abs(arm[digest.arm] - own).max(initial=0.0) <= 1e-9)
            arm[digest.arm] = own  # the log is exact whatever the model does today
            mix = np.asarray(sum(share * arm[key] for key, (_, share) in shares.items()))
            for name, cfg in variants.items():
                target = _marginals(ranked[f"variant {name}"], i, digest, length, cfg)
                out[name].append((digest_terms(digest, target, mix), digest.user_id))
    return out, reproduced


def _rank_group(
    model: Model,
    group: list[LoggedDigest],
    context: UserContext,
    candidates: Candidates,
    shares: Mapping[str, tuple[RankerConfig, float]],
    variants: Mapping[str, RankerConfig],
) -> dict[str, list[tuple[NDArray[np.intp], NDArray[np.intp]]]]:
    """Per digest, for every arm and variant config: pool-local ranked indices and the
    pool-local items its exploration draws from."""
    ids = candidates.block.paper_ids
    pools = np.zeros((len(group), len(ids)), dtype=bool)
    for row, digest in enumerate(group):  # each pool is a sorted subset of the sorted ids
        pools[row, np.searchsorted(ids, digest.pool)] = True
    sizes = [d.digest_size for d in group]
    configs = {key: cfg for key, (cfg, _) in shares.items()}
    configs.update({f"variant {name}": cfg for name, cfg in variants.items()})
    cache: dict[RankerConfig, list[tuple[NDArray[np.intp], NDArray[np.intp]]]] = {}
    out = {}
    for key, cfg in configs.items():
        if cfg not in cache:
            levels = [d.strictness for d in group]
            cols, explorable = ranked_pool_columns(
                model, context, candidates, pools, sizes, cfg, None, levels
            )
            cache[cfg] = [
                (_local(d.pool, ids[c]), _local(d.pool, ids[explorable[row]]))
                for row, (d, c) in enumerate(zip(group, cols, strict=True))
            ]
        out[key] = cache[cfg]
    return out


def _marginals(
    ranked: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    i: int,
    digest: LoggedDigest,
    length: int,
    cfg: RankerConfig,
) -> NDArray[np.float64]:
    cols, explorable = ranked[i]
    return ranked_marginals(cols, len(digest.pool), digest.digest_size, cfg, length, explorable)


def _local(pool: NDArray[np.int64], papers: NDArray[np.int64]) -> NDArray[np.intp]:
    """Positions of ``papers`` in the ascending ``pool``; ValueError if one is missing."""
    at = np.searchsorted(pool, papers)
    if len(papers) and (
        (at >= len(pool)).any() or (pool[np.minimum(at, len(pool) - 1)] != papers).any()
    ):
        raise ValueError("a logged paper is not in its digest's logged pool")
    return at.astype(np.intp)


def _rest(
    n_pool: int, head: NDArray[np.intp], within: NDArray[np.integer] | None = None
) -> NDArray[np.intp]:
    """Pool-local items of ``within`` (default all) not in ``head``, ascending
    (``np.setdiff1d`` sorts: 10x slower here)."""
    if within is None:
        keep = np.ones(n_pool, dtype=bool)
    else:
        keep = np.zeros(n_pool, dtype=bool)
        keep[within] = True
    keep[head] = False
    return np.flatnonzero(keep)


def _with_nothing(marginals: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fill the last column with the probability that nothing is shown at each position."""
    marginals[:, -1] = np.clip(1.0 - marginals[:, :-1].sum(axis=1), 0.0, 1.0)
    return marginals


def offpolicy_report(
    session: Session,
    model: Model,
    variants: Mapping[str, RankerConfig],
    *,
    now: datetime,
    window: timedelta,
    since: datetime | None = None,
    until: datetime | None = None,
    seed: int = 0,
    samples: int = 200,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Every variant's estimated clicks per digest beside the logging policy's observed value.

    ``samples`` bootstrap resamples per interval; 0 skips the bootstraps (NaN bounds), which
    leaves every point estimate as it is (the nightly guard-rail reads only those).

    Raises
    ------
    ValueError
        If no logged digest is in the window (nothing to estimate from).
    """
    arms = logged_arms(session, now=now, window=window, since=since, until=until)
    if not arms:
        raise ValueError(
            "no sent digest with a logged pool and a closed click window in this period; "
            "widen --since/--until or wait for the attribution window to close"
        )
    shares = mixture_shares(arms)
    accs = {name: Accumulator() for name in variants}
    clicks, shown, observed, users = np.zeros(MAX_SLOTS), np.zeros(MAX_SLOTS), [], []
    other_model = 0  # digests ranked by another model: their other arms' marginals are guesses
    reproduced = 0
    for chunk in stream_logged_digests(session, now=now, window=window, since=since, until=until):
        terms, matched = chunk_terms(model, chunk, _inputs(session, model, chunk), shares, variants)
        reproduced += matched
        for name, chunk_rows in terms.items():
            accs[name].add_chunk(chunk_rows)
        for digest in chunk:
            clicks[: len(digest.clicked)] += digest.clicked
            shown[: len(digest.shown)] += 1
            observed.append(float(digest.clicked.sum()))
            users.append(digest.user_id)
            other_model += digest.model_version != model.version
        progress(len(chunk))
    position_ctr = np.divide(clicks, shown, out=np.zeros(MAX_SLOTS), where=shown > 0)
    rng = np.random.default_rng(seed)
    explore = max((cfg.explore_slots for cfg, _ in shares.values()), default=0)
    size = int(np.max(shown > 0, initial=0)) and int(np.flatnonzero(shown).max() + 1)
    results = [
        estimate_variant(name, cfg, accs[name], position_ctr, explore_slots=explore,
                         digest_size=size, rng=rng, samples=samples)
        for name, cfg in variants.items()
    ]  # fmt: skip
    return {
        "digests": len(observed),
        "window_days": window / timedelta(days=1),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "model_version": model.version,
        # The other logged arms are re-ranked with the active model; for digests a different
        # model ranked, that is what the arm would do today, not what it did then.
        "other_model_share": other_model / max(len(observed), 1),
        # Re-ranking a digest with its own arm gave back exactly what was logged.
        "reproduced_share": reproduced / max(len(observed), 1),
        "logging": {
            "arms": {key: share for key, (_, share) in shares.items()},
            # its own generator: the interval must not depend on how many variants ran first
            "observed": _observed(
                np.asarray(observed), np.asarray(users), np.random.default_rng(seed), samples
            ),
            "position_ctr": position_ctr[:size].tolist(),
        },
        "variants": {r.name: r.as_dict() for r in results},
    }


def _observed(
    clicks: NDArray[np.float64], users: NDArray[np.int64], rng: np.random.Generator, samples: int
) -> dict[str, float]:
    """The logging policy's own clicks per digest: a mean, with the same user bootstrap."""
    logged = op.LoggedSlates(
        items=np.zeros((len(clicks), 1), dtype=np.int64),
        clicks=clicks[:, None],
        logging_propensity=np.ones((len(clicks), 1)),
        target_propensity=np.ones((len(clicks), 1)),
    )
    low, high = _interval(logged, op.ips, users, rng, samples)
    return {"value": float(clicks.mean()), "boot_low": low, "boot_high": high}


def _inputs(
    session: Session, model: Model, chunk: list[LoggedDigest]
) -> list[tuple[list[int], UserContext, Candidates]]:
    """The chunk's digests grouped by ranking chunk (one instant, one candidate block)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for row, digest in enumerate(chunk):
        groups[digest.pool_id].append(row)
    out = []
    for rows in groups.values():
        at = chunk[rows[0]].ranked_at
        papers = np.unique(np.concatenate([chunk[r].pool for r in rows]))
        context = context_as_of(session, model, [chunk[r].user_id for r in rows], at)
        out.append((rows, context, candidates_of(session, model, papers, at)))
    return out
