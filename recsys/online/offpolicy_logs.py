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
class TermsBlock:
    """Many digests under one variant: :class:`DigestTerms` as rows of ``(n, L)`` arrays.

    ``fields`` holds the ``_FIELDS`` arrays, padded past each digest's end as
    :class:`Accumulator` pads; the scalars of ``DigestTerms`` are one value per digest.
    """

    fields: dict[str, NDArray[np.float64]]
    users: NDArray[np.int64]
    unsupported: NDArray[np.float64]
    shown_mass: NDArray[np.float64]
    empty_unsupported: NDArray[np.bool_]

    @classmethod
    def of(cls, terms: list[tuple[DigestTerms, int]]) -> TermsBlock:
        """The block of per-digest terms (the reference path, one digest at a time)."""
        length = max((len(t.items) for t, _ in terms), default=0)
        fields = {k: np.full((len(terms), length), _PAD[k]) for k in _FIELDS}
        for i, (t, _) in enumerate(terms):
            values = (t.items >= 0, t.clicks, t.mu, t.pi, t.target_mass)
            for name, value in zip(_FIELDS, values, strict=True):
                fields[name][i, : len(t.items)] = value
        return cls(
            fields,
            np.array([u for _, u in terms], dtype=np.int64),
            np.array([t.unsupported for t, _ in terms]),
            np.array([t.shown_mass for t, _ in terms]),
            np.array([t.empty_unsupported > 0 for t, _ in terms], dtype=bool),
        )


@dataclass
class Accumulator:
    """A variant's per-digest terms, packed chunk by chunk into float32 blocks.

    What stays is about 20 bytes per (digest, position), plus the user id, for the
    estimators and the bootstrap.
    """

    blocks: list[dict[str, NDArray[np.float32]]] = field(default_factory=list)
    users: list[NDArray[np.int64]] = field(default_factory=list)
    unsupported: float = 0.0
    shown_mass: float = 0.0
    empty_unsupported: bool = False

    def add_chunk(self, block: TermsBlock) -> None:
        if not len(block.users):
            return
        self.blocks.append({k: v.astype(np.float32) for k, v in block.fields.items()})
        self.users.append(block.users)
        # one digest at a time, in order: the same float sums as before the terms were
        # computed a chunk at a time
        for unsupported, shown in zip(
            block.unsupported.tolist(), block.shown_mass.tolist(), strict=True
        ):
            self.unsupported += unsupported
            self.shown_mass += shown
        self.empty_unsupported |= bool(block.empty_unsupported.any())

    def stacked(self) -> dict[str, NDArray[np.float64]]:
        """Every block padded to the longest digest and stacked, (n, L) per field.

        Written straight into one float64 array per field, and each float32 block is let go
        once copied (the accumulator is read once; the blocks are 200 MB at 1,000,000
        digests). Measured, this did not lower the benchmark's 1.2 GB peak, which lies
        elsewhere. Empties ``blocks``.
        """
        length = max(b["mu"].shape[1] for b in self.blocks)
        n = sum(len(b["mu"]) for b in self.blocks)
        out = {k: np.full((n, length), _PAD[k]) for k in _FIELDS}
        start = 0
        while self.blocks:
            block = self.blocks.pop(0)
            rows, width = block["mu"].shape
            for k in _FIELDS:
                out[k][start : start + rows, :width] = block[k]
            start += rows
        return out


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
) -> tuple[dict[str, TermsBlock], int]:
    """Every variant's terms for one chunk, and how many digests the re-ranking reproduced.

    ``inputs`` groups digest rows by ranking instant. A digest is *reproduced* when re-ranking
    it with its own arm's config gives exactly the logged marginals: the check that the
    re-ranker, the model and the as-of context are what ranked it. The terms are those of
    :func:`digest_terms`, digest by digest, computed for many digests at once (the per-digest
    numpy calls were most of the report's time: about 1 ms a digest, profiled).
    """
    parts: dict[str, list[TermsBlock]] = defaultdict(list)
    reproduced = 0
    for rows, context, candidates in inputs:
        group = [digests[r] for r in rows]
        ranked = _rank_group(model, group, context, candidates, shares, variants)
        for part in _batches(group):
            terms, matched = _batch_terms(group, part, ranked, shares, variants)
            reproduced += matched
            for name, block in terms.items():
                parts[name].append(block)
    return {name: _concat(blocks) for name, blocks in parts.items()}, reproduced


# Digest-position-item cells per batch: bounds the (digests, L, C + 1) marginals to ~8 MB
# each, whatever the pool size (about ten are alive at once).
_BATCH_CELLS = 1_000_000


def _batches(group: list[LoggedDigest]) -> list[range]:
    length = max(max(d.digest_size, len(d.shown)) for d in group)
    width = max(len(d.pool) for d in group) + 1
    step = max(1, _BATCH_CELLS // (length * width))
    return [range(i, min(i + step, len(group))) for i in range(0, len(group), step)]


@dataclass(frozen=True)
class _Batch:
    """Digests of one ranking group laid out as ``(digests, L, C + 1)`` marginals.

    Column ``C`` (the widest pool) is "nothing shown" for every digest; a smaller pool's
    columns from its size on are padding that every policy gives zero mass.
    """

    n_pool: NDArray[np.intp]  # (G,)
    sizes: NDArray[np.intp]  # (G,) digest sizes
    lengths: NDArray[np.intp]  # (G,) rows of each digest's own marginals
    local: NDArray[np.intp]  # (G, L) pool-local item shown at l, C for nothing
    length: int  # L
    width: int  # C

    @property
    def valid(self) -> NDArray[np.bool_]:
        """(G, C): the columns that are pool items."""
        return np.arange(self.width)[None, :] < self.n_pool[:, None]


def _batch_terms(
    group: list[LoggedDigest],
    part: range,
    ranked: dict[str, list[tuple[NDArray[np.intp], NDArray[np.intp]]]],
    shares: Mapping[str, tuple[RankerConfig, float]],
    variants: Mapping[str, RankerConfig],
) -> tuple[dict[str, TermsBlock], int]:
    """:func:`chunk_terms` for the digests ``part`` of one ranking group."""
    digests = [group[i] for i in part]
    batch = _batch(digests)
    arm = {
        key: _ranked_batch([ranked[key][i] for i in part], batch, cfg)
        for key, (cfg, _) in shares.items()
    }
    own = _logged_batch(
        digests, batch, [ranked[d.arm][i][1] for d, i in zip(digests, part, strict=True)]
    )
    reproduced = 0
    for key in shares:
        mine = np.array([d.arm == key for d in digests], dtype=bool)
        if mine.any():
            diff = np.abs(arm[key][mine] - own[mine]).max(axis=(1, 2), initial=0.0)
            reproduced += int((diff <= 1e-9).sum())
            arm[key][mine] = own[mine]  # the log is exact whatever the model does today
    mix = np.asarray(sum(share * arm[key] for key, (_, share) in shares.items()))
    users = np.array([d.user_id for d in digests], dtype=np.int64)
    out = {}
    for name, cfg in variants.items():
        target = _ranked_batch([ranked[f"variant {name}"][i] for i in part], batch, cfg)
        out[name] = _block_terms(digests, batch, target, mix, users)
    return out, reproduced


def _batch(digests: list[LoggedDigest]) -> _Batch:
    n_pool = np.array([len(d.pool) for d in digests], dtype=np.intp)
    lengths = np.array([max(d.digest_size, len(d.shown)) for d in digests], dtype=np.intp)
    width, length = int(n_pool.max()), int(lengths.max())
    local = np.full((len(digests), length), width, dtype=np.intp)
    for i, d in enumerate(digests):
        local[i, : len(d.shown)] = _local(d.pool, d.shown)
    sizes = np.array([d.digest_size for d in digests], dtype=np.intp)
    return _Batch(n_pool, sizes, lengths, local, length, width)


def _ranked_batch(
    ranked_and_explorable: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    batch: _Batch,
    config: RankerConfig,
) -> NDArray[np.float64]:
    """:func:`ranked_marginals` of every digest of ``batch``, as ``(G, L, C + 1)``: each
    digest's ranked pool-local items and the items its exploration draws from."""
    ranked = [cols for cols, _ in ranked_and_explorable]
    g, length, width = len(ranked), batch.length, batch.width
    out = np.zeros((g, length, width + 1))
    rows = np.arange(length)[None, :]
    valid = batch.valid
    if config.uniform:
        n = np.minimum(batch.sizes, batch.n_pool)
        value = 1.0 / np.maximum(batch.n_pool, 1)
        cells = (rows < n[:, None])[:, :, None] & valid[:, None, :]
        out[:, :, :width] = np.where(cells, value[:, None, None], 0.0)
        return _with_nothing_batch(out, batch)
    top_len = np.array([min(len(r), s) for r, s in zip(ranked, batch.sizes, strict=True)])
    explore = config.explore_slots
    heads = np.minimum(top_len, batch.sizes - np.minimum(explore, batch.sizes))
    which = np.repeat(np.arange(g), heads)
    none = [np.zeros(0, dtype=np.intp)]  # np.concatenate refuses an empty list
    at = np.concatenate([np.arange(h) for h in heads.tolist()] + none)
    items = np.concatenate([r[:h] for r, h in zip(ranked, heads.tolist(), strict=True)] + none)
    items = items.astype(np.intp)
    out[which, at, items] = 1.0
    in_head = np.zeros((g, width), dtype=bool)
    in_head[which, items] = True
    rest = valid & ~in_head & _mask([e for _, e in ranked_and_explorable], g, width)
    n_rest = rest.sum(axis=1)
    k = np.minimum(np.minimum(explore, batch.sizes), n_rest) * (top_len > 0)
    drawn = (rows >= heads[:, None]) & (rows < (heads + k)[:, None])
    value = 1.0 / np.maximum(n_rest, 1)
    cells = drawn[:, :, None] & rest[:, None, :]
    out[:, :, :width] = np.where(cells, value[:, None, None], out[:, :, :width])
    return _with_nothing_batch(out, batch)


def _logged_batch(
    digests: list[LoggedDigest], batch: _Batch, explorable: list[NDArray[np.intp]]
) -> NDArray[np.float64]:
    """:func:`logged_marginals` of every digest of ``batch``, as ``(G, L, C + 1)``.

    ``explorable`` is, per digest, the pool-local items its arm's exploration draws from as
    re-ranked (not logged); the papers the log shows at explored positions are always among
    them, each explored position spread at its logged propensity.
    """
    g, length, width = len(digests), batch.length, batch.width
    out = np.zeros((g, length, width + 1))
    valid = batch.valid
    shown = np.arange(length)[None, :] < np.array([len(d.shown) for d in digests])[:, None]
    uniform = np.array([bool(d.ranker_config.get("uniform")) for d in digests], dtype=bool)
    explored = np.zeros((g, length), dtype=bool)
    propensity = np.zeros((g, length))
    for i, d in enumerate(digests):
        explored[i, : len(d.explored)] = d.explored
        propensity[i, : len(d.propensity)] = d.propensity
    head = shown & ~explored & ~uniform[:, None]
    which, at = np.nonzero(head)
    out[which, at, batch.local[which, at]] = 1.0
    in_head = np.zeros((g, width), dtype=bool)
    in_head[which, batch.local[which, at]] = True
    within = _mask(explorable, g, width)
    drawn_rows, drawn_at = np.nonzero(explored & ~uniform[:, None])
    within[drawn_rows, batch.local[drawn_rows, drawn_at]] = True  # what the log shows there
    rest = valid & ~in_head & within
    # uniform: 1 / n_pool on every item of a shown position; else the logged propensity on
    # the rest at an explored one (an explored position always has a rest: its own paper)
    uniform_value = 1.0 / np.maximum(batch.n_pool, 1)
    value = np.where(uniform[:, None], uniform_value[:, None], propensity)  # (G, L)
    spread = np.where(uniform[:, None], shown, explored & ~uniform[:, None])
    cells = spread[:, :, None] & np.where(uniform[:, None], valid, rest)[:, None, :]
    out[:, :, :width] = np.where(cells, value[:, :, None], out[:, :, :width])
    return _with_nothing_batch(out, batch)


def _mask(items: list[NDArray[np.intp]], g: int, width: int) -> NDArray[np.bool_]:
    """(G, C): True at each digest's listed pool-local items."""
    mask = np.zeros((g, width), dtype=bool)
    rows = np.repeat(np.arange(g), [len(i) for i in items])
    none = [np.zeros(0, dtype=np.intp)]
    mask[rows, np.concatenate([np.asarray(i, dtype=np.intp) for i in items] + none)] = True
    return mask


def _row_sums(marginals: NDArray[np.float64], batch: _Batch) -> NDArray[np.float64]:
    """(G, L): each row's mass on pool items, summed over exactly the digest's own pool.

    Summing the padding too would group numpy's pairwise sum differently, and the
    "nothing" column (1 - this) of a full row would become 0 where it was 1e-16, or back:
    the same digest would then count as unsupported or not depending on its neighbours.
    """
    sums = np.zeros(marginals.shape[:2])
    for n in np.unique(batch.n_pool).tolist():
        same = batch.n_pool == n
        sums[same] = marginals[same, :, :n].sum(axis=-1)
    return sums


def _with_nothing_batch(marginals: NDArray[np.float64], batch: _Batch) -> NDArray[np.float64]:
    marginals[:, :, -1] = np.clip(1.0 - _row_sums(marginals, batch), 0.0, 1.0)
    return marginals


def _block_terms(
    digests: list[LoggedDigest],
    batch: _Batch,
    target: NDArray[np.float64],
    mixture: NDArray[np.float64],
    users: NDArray[np.int64],
) -> TermsBlock:
    """:func:`digest_terms` of every digest of ``batch``, padded as :class:`TermsBlock`."""
    g, length, width = len(digests), batch.length, batch.width
    inside = np.arange(length)[None, :] < batch.lengths[:, None]  # (G, L)
    which, rows = np.arange(g)[:, None], np.arange(length)[None, :]
    clicks = np.zeros((g, length))
    for i, d in enumerate(digests):
        clicks[i, : len(d.clicked)] = d.clicked
    real = target[:, :, :width]
    unsupported_cells = np.where(mixture[:, :, :width] <= 0, real, 0.0)
    empty = (mixture[:, :, width] <= 0) & inside
    fields = {
        "shown": (batch.local < width).astype(np.float64),
        "clicks": clicks,
        "mu": np.where(inside, mixture[which, rows, batch.local], _PAD["mu"]),
        "pi": np.where(inside, target[which, rows, batch.local], _PAD["pi"]),
        "mass": np.where(inside, _row_sums(target, batch), _PAD["mass"]),
    }
    return TermsBlock(
        fields,
        users,
        unsupported_cells.sum(axis=(1, 2)),
        real.sum(axis=(1, 2)),
        np.where(empty, target[:, :, width], 0.0).sum(axis=1) > 0,
    )


def _concat(blocks: list[TermsBlock]) -> TermsBlock:
    """One block of several, each padded to the longest digest."""
    length = max(b.fields["mu"].shape[1] for b in blocks)
    fields = {
        k: np.concatenate(
            [np.pad(b.fields[k], ((0, 0), (0, length - b.fields[k].shape[1])),
                    constant_values=_PAD[k]) for b in blocks]
        )
        for k in _FIELDS
    }  # fmt: skip
    return TermsBlock(
        fields,
        np.concatenate([b.users for b in blocks]),
        np.concatenate([b.unsupported for b in blocks]),
        np.concatenate([b.shown_mass for b in blocks]),
        np.concatenate([b.empty_unsupported for b in blocks]),
    )


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
        for name, block in terms.items():
            accs[name].add_chunk(block)
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
