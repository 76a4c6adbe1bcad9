"""The off-policy terms of a batch of digests are the terms of each digest on its own.

``chunk_terms`` computes the marginals of many digests at once (``(digests, L, C + 1)``
arrays, pools of different sizes padded to the widest); the reference is the one-digest
path (``ranked_marginals``, ``logged_marginals``, ``digest_terms``), run here digest by
digest exactly as ``chunk_terms`` ran before it was batched. Random logs cover what the
padding could get wrong: pools of different sizes, digests longer than their size, rankings
cut short by the bar (even empty), uniform and exploring arms, logs the re-ranking does and
does not reproduce.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from recsys.online import offpolicy_logs as opl
from recsys.online.assignment import RankerConfig
from recsys.online.logged import LoggedDigest

AT = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
SHIPPED, UNIFORM = RankerConfig(explore_slots=1), RankerConfig(uniform=True)
SHARES = {
    f"default {json.dumps(SHIPPED.as_dict())}": (SHIPPED, 0.8),
    f"holdout {json.dumps(UNIFORM.as_dict())}": (UNIFORM, 0.2),
}
VARIANTS = {
    "topk": RankerConfig(),
    "explore2": RankerConfig(explore_slots=2),
    "uniform": UNIFORM,
}


Ranked = tuple[NDArray[np.intp], NDArray[np.intp]]  # pool-local ranking, explorable items


def _digest(rng: np.random.Generator, i: int) -> tuple[LoggedDigest, NDArray[np.intp]]:
    """A logged digest of a random arm, its shown papers drawn as that arm draws them, and
    the pool-local items its exploration drew from (those above its bar)."""
    pool = np.sort(rng.choice(40, size=int(rng.integers(3, 14)), replace=False)).astype(np.int64)
    size = int(rng.integers(2, 6))
    holdout = rng.random() < 0.3
    order = rng.permutation(len(pool))
    n = min(size, len(pool))
    explorable = np.sort(order[n - 1 :]) if rng.random() < 0.5 else np.arange(len(pool))
    if holdout:
        shown, explored = pool[order[:n]], np.zeros(n, bool)
        propensity = np.full(n, 1.0 / len(pool))
    else:
        shown = pool[order[:n]]
        explored = np.arange(n) >= size - 1  # the last slot is drawn from the explorable rest
        rest = np.setdiff1d(explorable, order[: n - 1]) if explored.any() else explorable
        propensity = np.where(explored, 1.0 / max(len(rest), 1), 1.0)
    config: dict[str, Any] = UNIFORM.as_dict() if holdout else SHIPPED.as_dict()
    digest = LoggedDigest(
        digest_id=i, user_id=100 + i // 2, digest_size=size, ranked_at=AT, sent_at=AT,
        model_version="m", experiment_id=None, variant="holdout" if holdout else None,
        ranker_config=config, pool_id=1, pool=pool, shown=shown,
        propensity=propensity, explored=explored,
        clicked=rng.random(len(shown)) < 0.3,
    )  # fmt: skip
    return digest, explorable.astype(np.intp)


def _ranking(
    rng: np.random.Generator, d: LoggedDigest, explorable: NDArray[np.intp], key: str
) -> Ranked:
    """Pool-local indices best first and the explorable items: for the digest's own arm,
    often the logged head and the set it drew from."""
    local = np.searchsorted(d.pool, d.shown)
    if key == d.arm and not d.ranker_config.get("uniform") and rng.random() < 0.6:
        head = local[~d.explored]
        others = rng.permutation(np.setdiff1d(np.arange(len(d.pool)), head))
        return np.concatenate([head, others]).astype(np.intp), explorable
    cols = rng.permutation(len(d.pool))[: int(rng.integers(0, len(d.pool) + 1))]
    drawn = np.sort(rng.permutation(len(d.pool))[: int(rng.integers(0, len(d.pool) + 1))])
    return cols.astype(np.intp), drawn.astype(np.intp)


def _reference(
    group: list[LoggedDigest], ranked: dict[str, list[Ranked]]
) -> tuple[dict[str, opl.TermsBlock], int]:
    """The one-digest-at-a-time path, as ``chunk_terms`` ran it before batching."""
    out: dict[str, list[tuple[opl.DigestTerms, int]]] = {name: [] for name in VARIANTS}
    reproduced = 0
    for i, d in enumerate(group):
        length = max(d.digest_size, len(d.shown))
        arm = {
            key: opl.ranked_marginals(
                ranked[key][i][0], len(d.pool), d.digest_size, cfg, length, ranked[key][i][1]
            )
            for key, (cfg, _) in SHARES.items()
        }
        own = opl.logged_marginals(d, length, ranked[d.arm][i][1])
        reproduced += bool(np.abs(arm[d.arm] - own).max(initial=0.0) <= 1e-9)
        arm[d.arm] = own
        mix = np.asarray(sum(share * arm[key] for key, (_, share) in SHARES.items()))
        for name, cfg in VARIANTS.items():
            cols, drawn = ranked[f"variant {name}"][i]
            target = opl.ranked_marginals(cols, len(d.pool), d.digest_size, cfg, length, drawn)
            out[name].append((opl.digest_terms(d, target, mix), d.user_id))
    return {name: opl.TermsBlock.of(terms) for name, terms in out.items()}, reproduced


def _logs(rng: np.random.Generator, n: int) -> tuple[list[LoggedDigest], dict[str, list[Ranked]]]:
    made = [_digest(rng, i) for i in range(n)]
    group = [d for d, _ in made]
    keys = [*SHARES, *(f"variant {name}" for name in VARIANTS)]
    ranked = {key: [_ranking(rng, d, e, key) for d, e in made] for key in keys}
    return group, ranked


@pytest.mark.parametrize("seed", range(6))
def test_batched_terms_are_each_digests_own_terms(seed: int) -> None:
    group, ranked = _logs(np.random.default_rng(seed), 60)
    expected, expected_reproduced = _reference(group, ranked)

    parts = [opl._batch_terms(group, part, ranked, SHARES, VARIANTS) for part in (range(60),)]
    (got, reproduced), = parts  # fmt: skip

    assert 0 < expected_reproduced < len(group)  # the check can go either way here
    assert reproduced == expected_reproduced
    for name in VARIANTS:
        want, have = expected[name], got[name]
        for field in ("shown", "clicks", "mu", "pi"):  # read off the marginals: exact
            np.testing.assert_array_equal(have.fields[field], want.fields[field], err_msg=field)
        np.testing.assert_allclose(have.fields["mass"], want.fields["mass"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(have.unsupported, want.unsupported, rtol=0, atol=1e-12)
        np.testing.assert_allclose(have.shown_mass, want.shown_mass, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(have.empty_unsupported, want.empty_unsupported)
        np.testing.assert_array_equal(have.users, want.users)


def test_small_batches_give_the_terms_of_one_large_batch() -> None:
    group, ranked = _logs(np.random.default_rng(9), 25)

    whole, matched = opl._batch_terms(group, range(25), ranked, SHARES, VARIANTS)
    pieces = [opl._batch_terms(group, range(i, min(i + 4, 25)), ranked, SHARES, VARIANTS)
              for i in range(0, 25, 4)]  # fmt: skip

    assert sum(m for _, m in pieces) == matched
    for name in VARIANTS:
        joined = opl._concat([terms[name] for terms, _ in pieces])
        for field in opl._FIELDS:
            np.testing.assert_array_equal(joined.fields[field], whole[name].fields[field])
        np.testing.assert_array_equal(joined.unsupported, whole[name].unsupported)


def test_the_accumulator_stacks_blocks_of_different_lengths_with_the_nothing_padding() -> None:
    def block(length: int, users: list[int]) -> opl.TermsBlock:
        n = len(users)
        fields = {k: np.full((n, length), 0.5) for k in opl._FIELDS}
        return opl.TermsBlock(
            fields, np.array(users), np.full(n, 0.25), np.ones(n), np.zeros(n, dtype=bool)
        )

    acc = opl.Accumulator()
    acc.add_chunk(block(2, [1, 2]))
    acc.add_chunk(block(3, [3]))
    stacked = acc.stacked()

    assert stacked["mu"].dtype == np.float64 and stacked["mu"].shape == (3, 3)
    assert acc.blocks == []  # let go once stacked: read once, and the peak is the stack
    np.testing.assert_array_equal(stacked["mu"][:2, 2], [1.0, 1.0])  # "nothing": weight 1
    np.testing.assert_array_equal(stacked["clicks"][:2, 2], [0.0, 0.0])
    np.testing.assert_array_equal(stacked["pi"][2], [0.5, 0.5, 0.5])
    assert (acc.unsupported, acc.shown_mass, acc.empty_unsupported) == (0.75, 3.0, False)
