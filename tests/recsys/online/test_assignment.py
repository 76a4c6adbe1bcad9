"""Assigning users to arms: stable, salted, in the allocated proportions; variant checks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from recsys.online.assignment import (
    ExperimentError,
    RankerConfig,
    assign,
    bucket,
    in_share,
    parse_variants,
)

USERS = np.arange(1, 20_001)


def test_a_users_bucket_is_the_documented_hash() -> None:
    raw = int.from_bytes(hashlib.sha256(b"s1:42").digest()[:8], "big")
    assert bucket("s1", [42])[0] == raw / 2**64
    assert bucket("s1", [42, 42]).tolist() == bucket("s1", [42, 42]).tolist()


def test_assignment_is_stable_across_calls_and_orders() -> None:
    first = assign("salt", USERS, [0.5, 0.5])
    again = assign("salt", USERS[::-1], [0.5, 0.5])[::-1]
    assert first.tolist() == again.tolist()


def test_arms_get_their_allocated_shares_and_the_rest_none() -> None:
    arms = assign("salt", USERS, [0.5, 0.3])
    n = len(USERS)
    for arm, share in ((0, 0.5), (1, 0.3), (-1, 0.2)):
        count = int((arms == arm).sum())
        assert abs(count - n * share) <= 4 * np.sqrt(n * share * (1 - share))


def test_a_new_salt_reshuffles_users() -> None:
    same = assign("a", USERS, [0.5, 0.5]) == assign("b", USERS, [0.5, 0.5])
    assert abs(same.mean() - 0.5) < 0.02


def test_a_share_picks_the_lowest_buckets() -> None:
    chosen = in_share("holdout", USERS, 0.1)
    assert abs(chosen.mean() - 0.1) < 0.01
    assert not in_share("holdout", USERS, 0.0).any()


def test_variants_parse_and_round_trip() -> None:
    variants = parse_variants(
        [
            {"name": "control", "allocation": 0.5},
            {"name": "explore", "allocation": 0.5, "config": {"explore_slots": 2}},
        ]
    )
    assert variants[1].config == RankerConfig(explore_slots=2)
    assert parse_variants([v.as_dict() for v in variants]) == variants
    weighted = RankerConfig.parse({"weights": {"als": 0, "content": 2}, "min_score": 0.1})
    assert weighted.as_dict() == {"min_score": 0.1, "weights": {"als": 0.0, "content": 2.0}}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([], "at least one"),
        ([{"name": "a", "allocation": 0.6}, {"name": "b", "allocation": 0.6}], "sum to 1.2"),
        ([{"name": "a", "allocation": 0.5}, {"name": "a", "allocation": 0.5}], "distinct"),
        ([{"name": "holdout", "allocation": 0.5}], "holdout"),
        ([{"name": "Bad Name", "allocation": 0.5}], "name"),
        ([{"name": "a", "allocation": 0}], "allocation"),
        ([{"name": "a", "allocation": 1, "config": {"temperature": 1}}], "unknown key"),
        ([{"name": "a", "allocation": 1, "config": {"diversity": 1.5}}], "diversity"),
        ([{"name": "a", "allocation": 1, "config": {"explore_slots": 99}}], "0..50"),
        ([{"name": "a", "allocation": 1, "config": {"explore_slots": 1.5}}], "integer"),
        ([{"name": "a", "allocation": 1, "config": {"weights": {"svd": 1}}}], "unknown component"),
        ([{"name": "a", "allocation": 1, "config": {"weights": {"als": -1}}}], ">= 0"),
        ([{"name": "a", "allocation": 1, "config": {"uniform": 1}}], "true or false"),
    ],
)
def test_bad_variants_are_refused_naming_the_part(variants: list, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        parse_variants(variants)
