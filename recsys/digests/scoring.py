"""Rank planned digests: build user and paper blocks from the database, score, pick top-k.

The database work (who are these users, what did they do, which papers are new to them)
happens here; the scoring itself is the pure recommender and ranking code.

Every ranked digest is logged for off-policy evaluation and online experiments (issue 6):
``digests.model_version``, ``experiment_id``, ``variant`` and ``ranker_config`` say which
policy ranked it; ``candidate_pool_id`` + ``candidate_mask`` give the exact pool the user could
have been shown (the chunk's candidate ids stored once in ``candidate_pools``, one bit per
candidate on the digest); ``digest_items.score``, ``propensity`` and ``explored`` give the
ranked list (see ``recsys.digests.exploration`` for what a propensity is).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Row, func, insert, select
from sqlalchemy.orm import Session

from recsys.db.bulk import insert_rows, update_rows
from recsys.db.models import (
    CandidatePoolRow,
    DigestItemRow,
    DigestRow,
    EventRow,
    InterestRow,
    PaperRow,
    UserRow,
)
from recsys.digests.exploration import Slate, explore_slate, pack_mask, ranked_slate, uniform_slate
from recsys.digests.interleave import interleave_ranking, record_teams
from recsys.digests.outbox import claim_many
from recsys.online.assignment import RankerConfig
from recsys.online.experiments import Arm, RankingDefaults, arms_for
from recsys.recommender import ContentProfile, Hybrid, PaperBlock, UserBlock
from recsys.recommender.content import TextVectors
from recsys.recommender.fastrank import cosine_similarity, mmr
from recsys.recommender.follows import (
    FOLLOW_KINDS,
    follow_hits,
    followed_author,
    followed_category,
    lift,
    normalise_author,
    normalise_category,
)
from recsys.recommender.ranking import top_k
from recsys.recommender.reasons import choose_reasons, contributions, top_component
from recsys.recommender.relevance import (
    STRICTNESS,
    Dislikes,
    apply_feedback,
    dislike_penalty,
    in_score_units,
    interest_floor,
    interest_quota,
    interest_similarity,
    nearest_interest,
    split_dislikes,
    user_bars,
)
from recsys.subscribers.events import EVENT_WEIGHTS
from recsys.training.model import Model

# Papers an arm with ``diversity`` re-ranks from: deep enough to find a different topic,
# shallow enough that every pick is still relevant.
DIVERSITY_POOL = 50
MAX_EVENTS_PER_USER = 200  # the latest events describe a user well enough, and bound the work
SKIP_REASON = "nothing new cleared your relevance bar today"
_SENT_LIKE = ("sending", "sent", "unknown")
# Mixed into every digest's seed, so exploration draws never reuse another generator's stream.
EXPLORATION_STREAM = 0x5EED_0006


@dataclass(frozen=True)
class UserContext:
    """What the explanations need besides vectors: titles of history papers, interest labels."""

    block: UserBlock  # its history_ids say which paper each history row is
    history_titles: list[str]
    interest_labels: list[str]
    # Per user row, normalised followed author names and category codes (matched exactly,
    # see recsys.recommender.follows): the embedder cannot see them.
    followed_authors: list[frozenset[str]] = field(default_factory=list)
    followed_categories: list[frozenset[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Candidates:
    block: PaperBlock
    titles: list[str]
    created_at: list[datetime]
    authors: list[list[str]] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class RankedDigest:
    """One user's digest as ranked, before anything is written.

    Attributes
    ----------
    slate : Slate
        The chosen candidate columns in display order, with propensities.
    scores : NDArray[np.float32]
        The score of each slate column under the arm's ranker.
    pool : NDArray[np.bool_], shape (n_candidates,)
        True where the candidate was rankable for this user (new to them, never sent or
        touched), above the relevance bar or not.
    arm : Arm
        The policy that ranked it and the experiment labels to log.
    explorable : NDArray[np.bool_], shape (n_candidates,), optional
        The pool's papers that clear the arm's relevance bar (or are followed): the set
        exploration slots draw from (``recsys.digests.exploration``). None: the whole pool.
    """

    slate: Slate
    scores: NDArray[np.float32]
    pool: NDArray[np.bool_]
    arm: Arm
    explorable: NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Ranking:
    """A chunk of users ranked against one candidate block; ``digests`` in the users' order."""

    candidates: Candidates
    context: UserContext
    digests: list[RankedDigest]


def rank_digests(
    session: Session,
    digest_ids: Sequence[int],
    model: Model,
    now: datetime,
    *,
    lookback: timedelta,
    min_score: float | None = None,
    defaults: RankingDefaults = RankingDefaults(),  # noqa: B008 - frozen, so safe to share
) -> list[int]:
    """Rank every still-``planned`` digest in ``digest_ids``; return the ids now ``ranked``.

    Parameters
    ----------
    session : Session
        Digests are claimed, logged and filled in it.
    digest_ids : sequence of int
        Digests to rank; ids no longer ``planned`` are left alone.
    model : Model
        The active model; its version is logged on each digest.
    now : datetime
        The ranking instant (aware UTC).
    lookback : timedelta
        Window floor for digests planned without ``covers_from``.
    min_score : float, optional
        Base relevance bar on the content cosine (see :func:`rank_users`); default the
        model's calibrated bar.
    defaults : RankingDefaults
        Exploration and holdout for users outside an experiment
        (``RankingDefaults.from_settings``); the default is the plain top-k.

    Returns
    -------
    list of int
        The digests moved to ``ranked``. Those with nothing to send move to ``skipped``.
    """
    pairs = _planned(session, digest_ids)
    if not pairs:
        return []
    users = [user for _, user in pairs]
    since = _since_planned(session, pairs, now, lookback)
    arms = arms_for(session, [u.id for u in users], defaults)
    seeds = [digest.id for digest, _ in pairs]  # a re-ranked digest draws the same sample
    ranking = rank_users(
        session, model, users, since, now, arms=arms, seeds=seeds, min_score=min_score
    )
    # Interleaving experiment (recsys.digests.interleave): its digests become team-drafts
    # of both variants' rankings; the teams are written with the items below.
    ranking, teams = interleave_ranking(
        session, model, users, since, now, ranking, seeds=seeds, min_score=min_score
    )
    row_of = {digest.id: row for row, (digest, _) in enumerate(pairs)}
    # One conditional UPDATE per outcome for the whole chunk: ids another worker already
    # moved are simply missing from what comes back, exactly as with a single claim.
    empty = [d for d, row in row_of.items() if not len(ranking.digests[row].slate)]
    skipped = claim_many(session, empty, "planned", "skipped", now, reason=SKIP_REASON)
    full = [d for d, row in row_of.items() if len(ranking.digests[row].slate)]
    ranked = claim_many(session, full, "planned", "ranked", now, model_version=model.version)
    _log_rankings(session, {d: row_of[d] for d in skipped + ranked}, ranking, model, now)
    _insert_items(session, {d: row_of[d] for d in ranked}, ranking, model)
    record_teams(session, {d: row_of[d] for d in ranked}, teams)
    return ranked


def rank_users(
    session: Session,
    model: Model,
    users: Sequence[UserRow],
    since: dict[int, datetime],
    now: datetime,
    *,
    arms: Sequence[Arm] | None = None,
    seeds: Sequence[int] | None = None,
    min_score: float | None = None,
) -> Ranking:
    """Rank ``users``' next digests without writing: the scorer's core, shared by the preview.

    Parameters
    ----------
    session : Session
        Only read from.
    model : Model
        The model to score with.
    users : sequence of UserRow
        At least one; each digest holds up to the user's ``digest_size`` papers.
    since : dict of user id to datetime
        Start of each user's window: papers ingested earlier are not new to them.
    now : datetime
        The ranking instant (aware UTC).
    arms : sequence of Arm, optional
        One per user (default: the plain top-k for everyone).
    seeds : sequence of int, optional
        One per user, seeding the arm's sampling (the digest id); needed only by arms that
        explore. Default 0.
    min_score : float, optional
        Base relevance bar for arms that do not set their own (default: the model's
        calibrated ``model.bar``); each user's strictness moves it (see
        :mod:`recsys.recommender.relevance`). A paper whose content cosine with the user's
        profile (after "less like this" penalties) is below the user's bar is never shown,
        whatever the model's score, unless the user follows its author or category; not in
        an exploration slot either (only the uniform holdout samples the whole pool). A cold
        user (no profile at all) is exempt, so new subscribers still get the newest papers.

    Returns
    -------
    Ranking
        The candidate block, the users' context, and one :class:`RankedDigest` per user.
    """
    arms = list(arms) if arms is not None else [Arm()] * len(users)
    seeds = list(seeds) if seeds is not None else [0] * len(users)
    if not len(arms) == len(seeds) == len(users):
        raise ValueError(f"{len(users)} users need as many arms and seeds")
    candidates = _candidates(session, model, min(since.values()), now)
    context = build_user_context(session, model, [u.id for u in users], now)
    context, dislikes = without_dislikes(model, context)
    pool = ~_exclusions(session, users, candidates, since)
    digests: list[RankedDigest | None] = [None] * len(users)
    full = _base_scores(model, context, candidates, arms)
    base = model.bar.score if min_score is None else min_score
    strictness = [u.strictness for u in users]
    relevance = user_relevance(model, context, dislikes, candidates, strictness, base)
    by_author, in_category = candidate_follows(context, candidates)
    for config, rows in _rows_by_config(arms).items():
        follows = by_author[rows], in_category[rows]
        scores, cols = ranked_columns(
            _config_scores(model, context, candidates, config, rows, full),
            relevance,
            rows,
            follows,
            pool[rows],
            candidates.block,
            [users[row].digest_size for row in rows],
            config,
        )
        # Exploration slots draw only from papers that clear the arm's bar: a below-bar paper
        # is never shown (issue 14), and drawing from the whole pool gave the off-policy
        # estimates weights of ~|pool| where ~|above the bar| suffices (see exploration).
        explorable = pool[rows] & ~below_bar(relevance, rows, *follows, config)
        for i, row in enumerate(rows):
            draw_from = pool[row] if config.uniform else explorable[i]
            slate = _slate(cols[i], draw_from, users[row].digest_size, config, seeds[row])
            digests[row] = RankedDigest(
                slate, scores[i, slate.cols], pool[row], arms[row], explorable[i]
            )
    return Ranking(candidates, context, [d for d in digests if d is not None])


@dataclass(frozen=True)
class UserRelevance:
    """Each user's content relevance to each candidate, their bar, and what feeds the quota.

    Attributes
    ----------
    cosine : (n_users, n_candidates) float32
        Profile cosine after "less like this" penalties (floored by explicit interests).
    drop : (n_users, n_candidates) float32
        What the penalties took off, in cosine units (for the model's scores).
    bars, offsets : (n_users,) float32
        The user's bar (base + strictness) and their strictness offset alone.
    cold : (n_users,) bool
        No profile at all: exempt from the bar.
    interests : (n_interests, n_candidates) float32
        Cosine of each explicit interest of the block with each candidate.
    """

    context: UserContext
    cosine: NDArray[np.float32]
    drop: NDArray[np.float32]
    bars: NDArray[np.float32]
    offsets: NDArray[np.float32]
    cold: NDArray[np.bool_]
    interests: NDArray[np.float32]

    def below(self, rows: list[int], arm_bar: float | None) -> NDArray[np.bool_]:
        """(len(rows), n_candidates): below the bar; an arm's own bar replaces the base."""
        bars = self.bars[rows] if arm_bar is None else arm_bar + self.offsets[rows]
        return (self.cosine[rows] < bars[:, None]) & ~self.cold[rows, None]

    def has_quota(self, rows: list[int]) -> bool:
        counts = np.bincount(self.context.block.interest_user, minlength=len(self.bars))
        return bool((counts[rows] >= 2).any())

    def quota(
        self, cols: NDArray[np.int32], rows: list[int], sizes: list[int]
    ) -> NDArray[np.int32]:
        """Each row's ranked columns cut to its size with a share per explicit interest."""
        block = self.context.block.take(rows)
        similarity = self.interests[_interest_rows(self.context, rows)]
        nearest, counts = nearest_interest(block, similarity, cols)
        out = np.full((len(rows), max(sizes)), -1, dtype=np.int32)
        for i, size in enumerate(sizes):
            picked = interest_quota(cols[i], nearest[i], int(counts[i]), size)
            out[i, : len(picked)] = picked
        return out


def _interest_rows(context: UserContext, rows: list[int]) -> NDArray[np.intp]:
    """Interest rows of ``rows``' users in the order ``UserBlock.take(rows)`` keeps them."""
    return np.flatnonzero(np.isin(context.block.interest_user, rows))


def without_dislikes(model: Model, context: UserContext) -> tuple[UserContext, Dislikes]:
    """The context with "less like this" taken out of the profile, and those dislikes.

    A dislike lowers similar papers by a bounded penalty instead of turning the profile
    away from a whole field (see :mod:`recsys.recommender.relevance`).
    """
    half_life = content_explainer(model).half_life_days
    block, dislikes = split_dislikes(context.block, half_life)
    return replace(context, block=block), dislikes


def user_relevance(
    model: Model,
    context: UserContext,
    dislikes: Dislikes,
    candidates: Candidates,
    strictness: Sequence[str],
    base: float,
) -> UserRelevance:
    """Content relevance with feedback applied, and each user's bar (see UserRelevance).

    ``strictness`` holds one level per user row (``UserRow.strictness``); ``base`` is the
    bar before it (the model's calibrated bar unless a caller overrides it).
    """
    explainer = content_explainer(model)
    block, embeddings = context.block, candidates.block.embeddings
    cosine = explainer.score(block, candidates.block)
    offsets = np.array([STRICTNESS.get(s, 0.0) for s in strictness], dtype=np.float32)
    bars = user_bars(base, list(strictness))
    interests = interest_similarity(block, embeddings)
    penalty = dislike_penalty(dislikes, embeddings, block.n_users)
    adjusted = apply_feedback(cosine, penalty, interest_floor(block, interests, bars), bars)
    cold = ~np.any(explainer.user_vectors(block) != 0, axis=1)
    return UserRelevance(context, adjusted, cosine - adjusted, bars, offsets, cold, interests)


def explain(
    session: Session, model: Model, ranking: Ranking, rows: Sequence[int]
) -> list[list[str]]:
    """The one-line reason of each paper of the digests at ``rows``, in slate order.

    Parameters
    ----------
    session : Session
        Only read from (the texts of cited and recommended papers).
    model : Model
        The model that ranked. A reason cites a read paper or an interest only when it is
        close to the item (``model.reason_floor``); otherwise it names what did rank the
        paper (see :mod:`recsys.recommender.reasons`).
    ranking : Ranking
        From :func:`rank_users`.
    rows : sequence of int
        Indices into ``ranking.digests``.

    Returns
    -------
    list of list of str
        One list per requested row, as long as that digest's slate.
    """
    lengths = [len(ranking.digests[r].slate) for r in rows]
    if not sum(lengths):
        return [[] for _ in rows]
    user_rows = np.repeat(np.asarray(rows, dtype=np.intp), lengths)
    cols = np.concatenate([ranking.digests[r].slate.cols for r in rows]).astype(np.intp)
    explored = np.concatenate([ranking.digests[r].slate.explored for r in rows])
    users, papers = ranking.context.block, ranking.candidates.block
    explainer, floor = content_explainer(model), model.reason_floor
    texts = _text_vectors(session, model, ranking, cols)
    history, interest = explainer.cited_sources(
        users, papers, user_rows, cols, min_similarity=floor, texts=texts
    )
    weighted, names = contributions(model.component, users, papers, user_rows, cols)
    profile = explainer.user_vectors(users)[user_rows]
    close = np.einsum("ij,ij->i", profile, explainer.paper_vectors(papers)[cols]) >= floor
    pairs = list(zip(user_rows.tolist(), cols.tolist(), strict=True))
    context, candidates = ranking.context, ranking.candidates
    reasons = choose_reasons(
        [followed_author(context.followed_authors[u], candidates.authors[c]) for u, c in pairs],
        [
            followed_category(context.followed_categories[u], candidates.categories[c])
            for u, c in pairs
        ],
        history.tolist(),
        interest.tolist(),
        top_component(weighted, names),
        explored.tolist(),
        close.tolist(),
        ranking.context.history_titles,
        ranking.context.interest_labels,
    )
    bounds = np.cumsum([0, *lengths])
    return [list(reasons[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def ranked_columns(
    scores: NDArray[np.float32],
    relevance: UserRelevance,
    rows: list[int],
    follows: tuple[NDArray[np.bool_], NDArray[np.bool_]],
    pool: NDArray[np.bool_],
    papers: PaperBlock,
    sizes: list[int],
    config: RankerConfig,
) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """The ranked candidate columns under ``config`` of the users at ``rows``, best first
    (-1 pads).

    The one sequence from scores to a ranking: "less like this" penalties in score units,
    followed authors and categories lifted, each user's relevance bar, top-k within the
    pool (newest first on ties), then MMR if the config diversifies or a share per explicit
    interest. ``rank_users`` and the off-policy re-ranker (``recsys.online.offpolicy_logs``)
    both call it, so a logged digest is re-ranked exactly as it was ranked. ``scores``,
    ``follows`` and ``pool`` hold the rows' lines only; ``relevance`` is the whole block's.

    Returns
    -------
    (scores, cols)
        The adjusted scores (len(rows), n_papers) and each row's ranked columns.
    """
    by_author, in_category = follows
    scores = in_score_units(scores, relevance.drop[rows], relevance.cosine[rows])
    scores = lift(scores, by_author, in_category)
    below = below_bar(relevance, rows, by_author, in_category, config)
    size = max(sizes)
    wide = config.diversity is not None or relevance.has_quota(rows)
    depth = max(size, DIVERSITY_POOL) if wide else size
    cols, best = top_k(scores, depth, exclude=~pool | below, tie_break=-papers.age_days)
    if config.diversity is not None:
        cols = diversified(cols, best, papers, size, config.diversity)
    elif relevance.has_quota(rows):
        cols = relevance.quota(cols, rows, sizes)
    return scores, cols


def below_bar(
    relevance: UserRelevance,
    rows: list[int],
    by_author: NDArray[np.bool_],
    in_category: NDArray[np.bool_],
    config: RankerConfig,
) -> NDArray[np.bool_]:
    """(len(rows), n_candidates): never shown by this arm, ranked or explored.

    The bar is on content similarity, not on the blend: a hybrid's scores have no fixed
    scale. What the reader follows by name clears it whatever its text. ``by_author`` and
    ``in_category`` hold the rows' lines only.
    """
    return relevance.below(rows, config.min_score) & ~(by_author | in_category)


def candidate_follows(
    context: UserContext, candidates: Candidates
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(n_users, n_candidates) masks: a followed author wrote it / it is in a followed category."""
    authors = [[normalise_author(a) for a in names] for names in candidates.authors]
    codes = [[normalise_category(c) for c in cats] for cats in candidates.categories]
    return (
        follow_hits(context.followed_authors, authors).toarray(),
        follow_hits(context.followed_categories, codes).toarray(),
    )


def _text_vectors(
    session: Session, model: Model, ranking: Ranking, cols: NDArray[np.intp]
) -> TextVectors:
    """TF-IDF vectors of the history papers, the interests and each pair's paper: reasons
    judge closeness on words (before the SVD), as a reader checking them would."""
    history_ids = ranking.context.block.history_ids
    history = np.zeros(0, np.int64) if history_ids is None else history_ids
    interests = model.embedder.tfidf(ranking.context.interest_labels)
    papers = ranking.candidates.block.paper_ids[cols]
    return TextVectors(
        history=lambda rows: model.paper_tfidf(session, history[rows]),
        interests=lambda rows: interests[rows],
        items=lambda pairs: model.paper_tfidf(session, papers[pairs]),
    )


def diversified(
    cols: NDArray[np.int32],
    best: NDArray[np.float32],
    papers: PaperBlock,
    size: int,
    trade_off: float,
) -> NDArray[np.int32]:
    """Each row's top ``DIVERSITY_POOL`` re-ranked by MMR down to ``size`` papers.

    MMR weighs a score against a cosine, so each row's scores are first divided by its best
    score's magnitude: the trade-off then means the same for a blend scoring ~50 as for a
    cosine.
    """
    top = np.abs(best[:, :1])
    scale = np.where((cols[:, :1] >= 0) & (top > 0), top, 1.0).astype(np.float32)
    picked, _ = mmr(cols, best / scale, cosine_similarity(papers.embeddings), size, trade_off)
    return picked


def _rows_by_config(arms: Sequence[Arm]) -> dict[RankerConfig, list[int]]:
    """Users grouped by ranker config: one score product and one top-k per group."""
    groups: dict[RankerConfig, list[int]] = defaultdict(list)
    for row, arm in enumerate(arms):
        groups[arm.config].append(row)
    return groups


def _base_scores(
    model: Model, context: UserContext, cands: Candidates, arms: Sequence[Arm]
) -> NDArray[np.float32] | None:
    """The model's own scores for the whole chunk: one product, unless every arm reweights."""
    if all(arm.config.weights for arm in arms):
        return None
    return model.component.score(context.block, cands.block)


def _config_scores(
    model: Model,
    context: UserContext,
    cands: Candidates,
    config: RankerConfig,
    rows: list[int],
    full: NDArray[np.float32] | None,
) -> NDArray[np.float32]:
    if not config.weights:
        assert full is not None  # _base_scores computes it whenever an arm keeps the weights
        return full if len(rows) == len(full) else full[rows]
    return reweighted_scores(model, context.block.take(rows), cands.block, dict(config.weights))


def reweighted_scores(
    model: Model, users: UserBlock, papers: PaperBlock, factors: dict[str, float]
) -> NDArray[np.float32]:
    """Scores with each blend weight multiplied by ``factors[name]`` (missing names: 1).

    A model that is a single component is a blend of one with weight 1, so a factor on its
    name scales its scores; a factor on a component the model lacks changes nothing.
    """
    component = model.component
    if not isinstance(component, Hybrid):
        return np.float32(factors.get(component.name, 1.0)) * component.score(users, papers)
    weights = component.weights * [factors.get(n, 1.0) for n in component.component_names]
    if not weights.any():  # every term switched off: every paper scores 0
        return np.zeros((users.n_users, papers.n_papers), dtype=np.float32)
    return Hybrid(component.components, weights).score(users, papers)


def _slate(
    cols: NDArray[np.int32],
    pool: NDArray[np.bool_],
    size: int,
    config: RankerConfig,
    seed: int,
) -> Slate:
    """The arm's slate from one top-k row (padding dropped) and the set it may draw from:
    the whole pool for the uniform holdout, the papers above the bar for exploration."""
    ranked = cols[cols >= 0][:size]
    if not config.uniform and not config.explore_slots:
        return ranked_slate(ranked)  # the common case: no pool scan, no generator
    eligible = np.flatnonzero(pool)
    rng = np.random.default_rng([EXPLORATION_STREAM, seed])
    if config.uniform:
        return uniform_slate(eligible, size, rng)
    return explore_slate(ranked, eligible, size, config.explore_slots, rng)


def _planned(session: Session, digest_ids: Sequence[int]) -> list[tuple[DigestRow, UserRow]]:
    query = (
        select(DigestRow, UserRow)
        .join(UserRow, UserRow.id == DigestRow.user_id)
        .where(DigestRow.id.in_(list(digest_ids)), DigestRow.status == "planned")
        .order_by(DigestRow.id)
    )
    return [(d, u) for d, u in session.execute(query).all()]


def _since_planned(
    session: Session, pairs: Sequence[tuple[DigestRow, UserRow]], now: datetime, lookback: timedelta
) -> dict[int, datetime]:
    """Start of each user's paper window: the digest's ``covers_from``, set when it was planned
    (the previous digest, capped, so a catch-up covers the gap once). Rows planned before that
    column existed fall back to the last sent digest, floored at ``lookback``."""
    since = {u.id: d.covers_from for d, u in pairs if d.covers_from is not None}
    legacy = [u for d, u in pairs if d.covers_from is None]
    if legacy:
        since.update(_since(session, legacy, now, lookback))
    return since


def _since(
    session: Session, users: Sequence[UserRow], now: datetime, lookback: timedelta
) -> dict[int, datetime]:
    """Papers are new to a user when ingested after their last sent digest (or the lookback)."""
    floor = now - lookback
    rows = session.execute(
        select(DigestRow.user_id, func.max(DigestRow.sent_at))
        .where(DigestRow.user_id.in_([u.id for u in users]), DigestRow.sent_at.is_not(None))
        .group_by(DigestRow.user_id)
    ).all()
    last: dict[int, datetime] = {uid: sent for uid, sent in rows if sent is not None}
    return {u.id: max(floor, last.get(u.id, floor)) for u in users}


def _candidates(session: Session, model: Model, since: datetime, now: datetime) -> Candidates:
    rows = session.execute(
        select(
            PaperRow.id,
            PaperRow.title,
            PaperRow.published,
            PaperRow.created_at,
            PaperRow.authors,
            PaperRow.categories,
        )
        .where(PaperRow.created_at >= since)
        .order_by(PaperRow.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    ages = np.array(
        [max((now - (r.published or r.created_at)).total_seconds(), 0) / 86400 for r in rows],
        dtype=np.float32,
    )
    block = PaperBlock(paper_ids=ids, embeddings=model.paper_vectors(session, ids), age_days=ages)
    return Candidates(
        block,
        [r.title for r in rows],
        [r.created_at for r in rows],
        [list(r.authors or []) for r in rows],
        [list(r.categories or []) for r in rows],
    )


def build_user_context(
    session: Session,
    model: Model,
    user_ids: Sequence[int],
    now: datetime,
    *,
    before: datetime | None = None,
) -> UserContext:
    """Rebuild each user's block from their latest events and interests (no retraining).

    ``before`` keeps only events older than it: the context as the scorer saw it then (an
    off-policy replay of a logged digest must not see the clicks on that very digest).
    """
    row_of = {uid: row for row, uid in enumerate(user_ids)}
    events = _latest_events(session, user_ids, before)
    hist_ids = sorted({paper_id for _, paper_id, _, _ in events})
    hist_row = {pid: i for i, pid in enumerate(hist_ids)}
    hist = np.array(hist_ids, dtype=np.int64)
    rows = session.execute(
        select(InterestRow.user_id, InterestRow.kind, InterestRow.value)
        .where(InterestRow.user_id.in_(list(user_ids)))
        .order_by(InterestRow.id)
    ).all()
    follows = _follows(rows, row_of)
    # Authors and categories are matched exactly (follows); only words are embedded.
    interests = [(uid, value) for uid, kind, value in rows if kind not in FOLLOW_KINDS]
    labels = [value for _, value in interests]
    block = UserBlock(
        user_ids=np.array(user_ids, dtype=np.int64),
        history_embeddings=model.paper_vectors(session, hist),
        event_user=np.array([row_of[e[0]] for e in events], dtype=np.int32),
        event_item=np.array([hist_row[e[1]] for e in events], dtype=np.int32),
        event_weight=np.array([EVENT_WEIGHTS[e[2]] for e in events], dtype=np.float32),
        event_age_days=np.array(
            [max((now - e[3]).total_seconds(), 0) / 86400 for e in events], dtype=np.float32
        ),
        interest_embeddings=_embed_labels(model, labels),
        interest_user=np.array([row_of[uid] for uid, _ in interests], dtype=np.int32),
        history_ids=hist,  # lets ALS fold users in with the factors of papers it learned
    )
    titles = _titles(session, hist_ids)
    return UserContext(block, titles, labels, *follows)


def _follows(
    interests: Sequence[Row[int, str, str]], row_of: dict[int, int]
) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """Each user row's normalised followed authors and categories."""
    authors: list[set[str]] = [set() for _ in row_of]
    categories: list[set[str]] = [set() for _ in row_of]
    for uid, kind, value in interests:
        if kind == "author":
            authors[row_of[uid]].add(normalise_author(value))
        elif kind == "category":
            categories[row_of[uid]].add(normalise_category(value))
    return [frozenset(a) for a in authors], [frozenset(c) for c in categories]


def _embed_labels(model: Model, labels: list[str]) -> NDArray[np.float32]:
    if not labels:
        return np.zeros((0, model.embedder.dim), dtype=np.float32)
    return model.embedder.transform(labels)


def _titles(session: Session, paper_ids: list[int]) -> list[str]:
    rows = dict(
        session.execute(select(PaperRow.id, PaperRow.title).where(PaperRow.id.in_(paper_ids))).all()
    )
    return [rows[pid] for pid in paper_ids]


def _latest_events(
    session: Session, user_ids: Sequence[int], before: datetime | None = None
) -> list[tuple[int, int, str, datetime]]:
    query = (
        select(EventRow.user_id, EventRow.paper_id, EventRow.kind, EventRow.created_at)
        .where(EventRow.user_id.in_(list(user_ids)), EventRow.kind.in_(list(EVENT_WEIGHTS)))
        .where(EventRow.suspect.is_(False))  # link scanners' clicks are kept, never counted
        .order_by(EventRow.created_at.desc(), EventRow.id.desc())
    )
    if before is not None:
        query = query.where(EventRow.created_at < before)
    rows = session.execute(query).all()
    kept: dict[int, int] = defaultdict(int)
    out = []
    for user_id, paper_id, kind, created_at in rows:
        if kept[user_id] < MAX_EVENTS_PER_USER:
            kept[user_id] += 1
            out.append((user_id, paper_id, kind, created_at))
    return out


def _exclusions(
    session: Session, users: Sequence[UserRow], cands: Candidates, since: dict[int, datetime]
) -> NDArray[np.bool_]:
    """True where a paper must not be shown: too old for the user, already seen or sent."""
    col_of = {int(pid): col for col, pid in enumerate(cands.block.paper_ids)}
    created = np.array([c.timestamp() for c in cands.created_at], dtype=np.float64)
    mask = np.zeros((len(users), len(col_of)), dtype=bool)
    row_of = {u.id: row for row, u in enumerate(users)}
    for user in users:
        mask[row_of[user.id]] = created < since[user.id].timestamp()
    for user_id, paper_id in _seen_pairs(session, list(row_of)):
        if paper_id in col_of:
            mask[row_of[user_id], col_of[paper_id]] = True
    return mask


def _seen_pairs(session: Session, user_ids: list[int]) -> list[tuple[int, int]]:
    sent = (
        select(DigestRow.user_id, DigestItemRow.paper_id)
        .join(DigestItemRow, DigestItemRow.digest_id == DigestRow.id)
        .where(DigestRow.user_id.in_(user_ids), DigestRow.status.in_(_SENT_LIKE))
    )
    touched = select(EventRow.user_id, EventRow.paper_id).where(EventRow.user_id.in_(user_ids))
    return [(u, p) for u, p in session.execute(sent.union(touched)).all()]


def content_explainer(model: Model) -> ContentProfile:
    """The content profile of the model (itself, or the hybrid's), else a default one.

    Reasons and the relevance bar come from content similarity whichever component ranked
    the papers: a cosine means the same thing for every model.
    """
    component = model.component
    if isinstance(component, ContentProfile):
        return component
    parts = component.components if isinstance(component, Hybrid) else []
    return next((c for c in parts if isinstance(c, ContentProfile)), ContentProfile())


def _log_rankings(
    session: Session, rows: dict[int, int], ranking: Ranking, model: Model, now: datetime
) -> None:
    """Record on each claimed digest the policy that ranked it and the pool it ranked from.

    The chunk's candidate ids are stored once; each digest keeps a bit per candidate.
    """
    if not rows:
        return
    pool_id = session.scalar(
        insert(CandidatePoolRow)
        .values(
            paper_ids=[int(p) for p in ranking.candidates.block.paper_ids],
            model_version=model.version,
            created_at=now,
        )
        .returning(CandidatePoolRow.id)
    )
    logs = [
        {
            "id": digest_id,
            "model_version": model.version,
            "experiment_id": ranking.digests[row].arm.experiment_id,
            "variant": ranking.digests[row].arm.variant,
            "ranker_config": ranking.digests[row].arm.config.as_dict(),
            "candidate_pool_id": pool_id,
            "candidate_mask": pack_mask(ranking.digests[row].pool),
        }
        for digest_id, row in rows.items()
    ]
    update_rows(session, DigestRow, logs)


def _insert_items(session: Session, rows: dict[int, int], ranking: Ranking, model: Model) -> None:
    """Explain and insert every claimed digest's items in one multi-row insert."""
    if not rows:
        return
    reasons = explain(session, model, ranking, list(rows.values()))
    paper_ids = ranking.candidates.block.paper_ids
    items = [
        {
            "digest_id": digest_id,
            "paper_id": int(paper_ids[col]),
            "position": position,
            "score": float(score),
            "reason": reason,
            "propensity": float(propensity),
            "explored": bool(explored),
        }
        for (digest_id, row), why in zip(rows.items(), reasons, strict=True)
        for position, (col, score, propensity, explored, reason) in enumerate(
            zip(
                ranking.digests[row].slate.cols,
                ranking.digests[row].scores,
                ranking.digests[row].slate.propensity,
                ranking.digests[row].slate.explored,
                why,
                strict=True,
            )
        )
    ]
    insert_rows(session, DigestItemRow.__table__, items)
