"""Team-draft interleaving (Radlinski, Kurup & Joachims 2008), the pure part.

Two rankers are compared inside one list instead of across two groups of users: each digest
is a merge of ranking A and ranking B in which every item is credited to the team ("a" or
"b") that picked it, and a click is a vote for its team. Each reader is their own control,
so the comparison needs far fewer readers than an A/B split (see docs/experiments.md).

The draft: while the list is short of ``k``, the team with fewer picks so far picks next;
when both have as many, a fair coin decides. A team picks its best-ranked item not already in
the list; a team with nothing left to pick yields to the other. So while both lists last,
the teams' sizes differ by at most one.

Randomness is one seeded generator per digest (:func:`draft_seed`), so a digest's draft is
reproducible from the experiment's salt, the digest id and the two rankings.

Propensities: :func:`position_marginals` returns, per position, the exact probability
(over the coins) that the item shown there is shown there given both rankings: the same
position-wise marginal as ``recsys.digests.exploration`` logs, conditional on the two
rankings (exact when both rankers are deterministic, which interleaving experiments require).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

TEAM_A, TEAM_B, TIE = "a", "b", "tie"
_DRAFT_STREAM = 0x1E7E_A7E  # mixed into every draft seed, so no other generator's stream is reused


def draft_seed(salt: str, digest_id: int) -> int:
    """A digest's draft seed: the first 8 bytes of ``sha256("<salt>:draft:<digest_id>")``."""
    digest = hashlib.sha256(f"{salt}:draft:{int(digest_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draft_rng(salt: str, digest_id: int) -> np.random.Generator:
    """The generator of one digest's coin flips (see :func:`draft_seed`)."""
    return np.random.default_rng([_DRAFT_STREAM, draft_seed(salt, digest_id)])


def team_draft(
    a: Sequence[int] | NDArray[np.integer],
    b: Sequence[int] | NDArray[np.integer],
    k: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.int64], NDArray[np.str_]]:
    """Interleave rankings ``a`` and ``b`` into one list of at most ``k`` ids.

    Parameters
    ----------
    a, b : sequence of int
        Each ranker's ids, best first, without repeats within a list (they may share ids).
    k : int
        Length wanted (>= 1); the result is shorter only if ``a`` and ``b`` together hold
        fewer than ``k`` distinct ids.
    rng : numpy.random.Generator
        Flips the coins; seed it per digest (:func:`draft_rng`) to reproduce the draft.

    Returns
    -------
    ids : NDArray[np.int64], shape (n,)
        The interleaved list, display order.
    teams : NDArray[np.str_], shape (n,)
        ``"a"`` or ``"b"``: the team that picked the id at each position.

    Raises
    ------
    ValueError
        If ``k`` < 1 or a list repeats an id.
    """
    first, second = _checked(a, "a"), _checked(b, "b")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    coins = rng.random(math.ceil(k / 2)) < 0.5
    return draft_with_coins(first, second, k, coins)


def position_marginals(
    a: Sequence[int] | NDArray[np.integer],
    b: Sequence[int] | NDArray[np.integer],
    ids: NDArray[np.integer],
) -> NDArray[np.float64]:
    """Per position, the exact probability that team-draft shows ``ids[l]`` at position ``l``.

    Walks the draft round by round over the distinct sets of ids taken so far, each with its
    probability. A round's coin only changes that set when both teams' next ids are the same
    id (otherwise it changes only their order), so the sets stay few and this is exact
    without enumerating all ``2**ceil(k/2)`` coin sequences. Always > 0 for a drafted list.
    """
    first, second = _checked(a, "a"), _checked(b, "b")
    shown = np.asarray(ids, dtype=np.int64).tolist()
    k = len(shown)
    hits = np.zeros(k)
    states: dict[frozenset[int], float] = {frozenset(): 1.0}
    for start in range(0, k, 2):
        following: dict[frozenset[int], float] = {}
        for taken, chance in states.items():
            x, y = _next_free(first, taken), _next_free(second, taken)
            if x is None or y is None:  # one team is out: the other fills the list, no coin
                rest = _fill(second if x is None else first, taken, k - start)
                _count(hits, shown, start, rest, chance)
                continue
            for leader in (TEAM_A, TEAM_B):
                pair = _round(first, second, taken, leader)[: k - start]
                _count(hits, shown, start, pair, chance / 2)
                after = taken | set(pair)
                following[after] = following.get(after, 0.0) + chance / 2
        states = following
    return hits


def _next_free(ranking: NDArray[np.int64], taken: frozenset[int]) -> int | None:
    """The best-ranked id not taken yet, or None when the ranking is used up."""
    return next((int(i) for i in ranking if int(i) not in taken), None)


def _round(
    a: NDArray[np.int64], b: NDArray[np.int64], taken: frozenset[int], leader: str
) -> list[int]:
    """The (up to) two ids of one tied round when ``leader`` picks first."""
    lead, follow = (a, b) if leader == TEAM_A else (b, a)
    first = _next_free(lead, taken)
    assert first is not None  # the caller checked that both teams have an id left
    second = _next_free(follow, taken | {first})
    if second is None:  # a follower with nothing left yields: the leader picks again
        second = _next_free(lead, taken | {first})
    return [first] if second is None else [first, second]


def _fill(ranking: NDArray[np.int64], taken: frozenset[int], n: int) -> list[int]:
    """The next ``n`` ids of one team once the other is used up."""
    return [int(i) for i in ranking if int(i) not in taken][:n]


def _count(
    hits: NDArray[np.float64], shown: list[int], start: int, ids: list[int], p: float
) -> None:
    """Add ``p`` at each position from ``start`` where ``ids`` put the shown id."""
    for offset, item in enumerate(ids):
        if start + offset < len(shown) and shown[start + offset] == item:
            hits[start + offset] += p


def credit(teams: NDArray[np.str_], clicked: NDArray[np.bool_]) -> str:
    """The winner of one interleaved digest: the team whose items got more clicks.

    Parameters
    ----------
    teams : NDArray[np.str_], shape (n,)
        The team of each position (from :func:`team_draft`).
    clicked : NDArray[np.bool_], shape (n,)
        True where the position was clicked.

    Returns
    -------
    str
        ``"a"``, ``"b"``, or ``"tie"`` (equal clicks, none included).
    """
    teams, clicked = np.asarray(teams), np.asarray(clicked, dtype=bool)
    if teams.shape != clicked.shape:
        raise ValueError(f"teams {teams.shape} and clicked {clicked.shape} differ in shape")
    score = int(np.sum(clicked & (teams == TEAM_A))) - int(np.sum(clicked & (teams == TEAM_B)))
    return TEAM_A if score > 0 else TEAM_B if score < 0 else TIE


def outcomes(
    teams: Sequence[NDArray[np.str_]], clicked: Sequence[NDArray[np.bool_]]
) -> NDArray[np.int8]:
    """:func:`credit` of many digests as +1 (A wins), -1 (B wins) or 0 (tie)."""
    sign = {TEAM_A: 1, TEAM_B: -1, TIE: 0}
    return np.array(
        [sign[credit(t, c)] for t, c in zip(teams, clicked, strict=True)], dtype=np.int8
    )


def draft_with_coins(
    a: NDArray[np.int64], b: NDArray[np.int64], k: int, coins: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.str_]]:
    """The draft for given coins (``coins[r]``: A picks first in the r-th tied round)."""
    picked: list[int] = []
    teams: list[str] = []
    seen: set[int] = set()
    heads = {TEAM_A: 0, TEAM_B: 0}
    lists = {TEAM_A: a, TEAM_B: b}
    sizes = {TEAM_A: 0, TEAM_B: 0}
    flips = 0
    while len(picked) < k:
        for team in (TEAM_A, TEAM_B):  # skip ids the other team already took
            while heads[team] < len(lists[team]) and int(lists[team][heads[team]]) in seen:
                heads[team] += 1
        left = {t for t in (TEAM_A, TEAM_B) if heads[t] < len(lists[t])}
        if not left:
            break
        if len(left) == 1:
            team = left.pop()
        elif sizes[TEAM_A] != sizes[TEAM_B]:
            team = TEAM_A if sizes[TEAM_A] < sizes[TEAM_B] else TEAM_B
        else:
            team = TEAM_A if coins[flips] else TEAM_B
            flips += 1
        item = int(lists[team][heads[team]])
        picked.append(item)
        teams.append(team)
        seen.add(item)
        sizes[team] += 1
    return np.array(picked, dtype=np.int64), np.array(teams, dtype="<U1")


def _checked(ranking: Sequence[int] | NDArray[np.integer], name: str) -> NDArray[np.int64]:
    ids = np.asarray(ranking, dtype=np.int64).ravel()
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{name}: a ranking must not repeat an id")
    return ids
