"""Online experiments, the pure part: variants, their ranker configs, and who gets which.

A user's arm is a function of ``(salt, user_id)`` only: the same user lands in the same arm
on every run, on every worker, with no assignment table to keep in sync; a new salt
re-randomises. The bucket is the first 8 bytes of ``sha256("<salt>:<user_id>")`` read as a
fraction of 2**64, so arms are independent of user ids' order and of other experiments' salts.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys.recommender import COMPONENTS

MAX_EXPLORE_SLOTS = 50  # a digest holds at most 50 papers
HOLDOUT = "holdout"  # the variant name logged for the uniform-random holdout
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CONFIG_KEYS = ("explore_slots", "min_score", "weights", "uniform", "diversity")


class ExperimentError(ValueError):
    """An experiment definition that cannot be run; the message says which part and why."""


@dataclass(frozen=True)
class RankerConfig:
    """What one arm changes in ``rank_digests``; the defaults rank exactly as without an arm.

    Attributes
    ----------
    explore_slots : int
        The last positions of the digest sampled uniformly from the unshown pool
        (:func:`recsys.digests.exploration.explore_slate`).
    min_score : float or None
        Relevance bar; None keeps the caller's (``recsys.recommender.ranking.MIN_RELEVANCE``).
    weights : tuple of (component name, multiplier)
        Multipliers of the model's learned blend weights, e.g. ``{"als": 0}`` drops ALS.
        A name the active model does not have multiplies a weight of 0, so changes nothing.
    uniform : bool
        The whole digest is a uniform sample of the pool (the holdout's policy).
    diversity : float or None
        MMR trade-off in [0, 1] (``recsys.recommender.fastrank.mmr``): the digest is
        re-ranked from the top ``DIVERSITY_POOL`` papers, 1 keeping the relevance order
        and lower values trading relevance for papers unlike those already picked. None: no
        re-ranking.
    """

    explore_slots: int = 0
    min_score: float | None = None
    weights: tuple[tuple[str, float], ...] = ()
    uniform: bool = False
    diversity: float | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str = "config") -> RankerConfig:
        """Validate a JSON object such as ``{"explore_slots": 2}``; ``ExperimentError`` if bad."""
        if not isinstance(data, Mapping):
            raise ExperimentError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_CONFIG_KEYS))
        if unknown:
            raise ExperimentError(f"{where}: unknown key(s) {unknown}; allowed: {_CONFIG_KEYS}")
        return cls(
            explore_slots=_slots(data.get("explore_slots", 0), where),
            min_score=_bar(data.get("min_score"), where),
            weights=_weights(data.get("weights", {}), where),
            uniform=_flag(data.get("uniform", False), where),
            diversity=_trade_off(data.get("diversity"), where),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form :meth:`parse` reads, with only the keys that differ from the default."""
        out: dict[str, Any] = {}
        if self.explore_slots:
            out["explore_slots"] = self.explore_slots
        if self.min_score is not None:
            out["min_score"] = self.min_score
        if self.weights:
            out["weights"] = dict(self.weights)
        if self.diversity is not None:
            out["diversity"] = self.diversity
        if self.uniform:
            out["uniform"] = True
        return out

    @property
    def random(self) -> bool:
        """True when this config samples (so ranking it needs a seeded generator)."""
        return self.uniform or self.explore_slots > 0


@dataclass(frozen=True)
class Variant:
    """One arm: a name, the share of users it gets, and its ranker config."""

    name: str
    allocation: float
    config: RankerConfig = field(default_factory=RankerConfig)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "allocation": self.allocation, "config": self.config.as_dict()}


def parse_variants(data: Sequence[Mapping[str, Any]]) -> tuple[Variant, ...]:
    """Variants from their JSON form (``[{"name", "allocation", "config"}, ...]``), checked.

    Raises
    ------
    ExperimentError
        For fewer than one variant, a bad or repeated name, an allocation outside (0, 1],
        allocations summing above 1, or a bad config. Allocations may sum below 1: the
        remaining users are not in the experiment (a ramp-up).
    """
    variants = tuple(_variant(item, i) for i, item in enumerate(data))
    names = [v.name for v in variants]
    if not variants:
        raise ExperimentError("variants: an experiment needs at least one variant")
    if len(set(names)) != len(names):
        raise ExperimentError(f"variants: names must be distinct, got {names}")
    total = math.fsum(v.allocation for v in variants)
    if total > 1 + 1e-9:
        raise ExperimentError(f"variants: allocations sum to {total:g}; at most 1 is allowed")
    return variants


def bucket(salt: str, user_ids: Sequence[int] | NDArray[np.integer]) -> NDArray[np.float64]:
    """Each user's stable position in [0, 1) under ``salt``.

    Parameters
    ----------
    salt : str
        The experiment's salt.
    user_ids : sequence of int
        Users to place.

    Returns
    -------
    NDArray[np.float64], shape (n,)
        ``int(sha256(f"{salt}:{user_id}")[:8]) / 2**64``; the same inputs always give the
        same output, on any machine.
    """
    digests = [hashlib.sha256(f"{salt}:{int(u)}".encode()).digest()[:8] for u in user_ids]
    raw = np.frombuffer(b"".join(digests), dtype=">u8").astype(np.float64)
    return np.minimum(raw / 2.0**64, np.nextafter(1.0, 0.0))  # float rounding could give 1.0


def assign(
    salt: str, user_ids: Sequence[int] | NDArray[np.integer], allocations: Sequence[float]
) -> NDArray[np.int64]:
    """The arm of each user: consecutive slices of [0, 1) of the allocations' widths.

    Parameters
    ----------
    salt : str
        The experiment's salt.
    user_ids : sequence of int
        Users to assign.
    allocations : sequence of float
        Share of users per arm, in order; they may sum below 1.

    Returns
    -------
    NDArray[np.int64], shape (n,)
        Index into ``allocations``, or -1 for a user in no arm (beyond their sum).
    """
    edges = np.cumsum(np.asarray(allocations, dtype=np.float64))
    arm = np.searchsorted(edges, bucket(salt, user_ids), side="right")
    return np.where(arm < len(edges), arm, -1).astype(np.int64)


def in_share(
    salt: str, user_ids: Sequence[int] | NDArray[np.integer], share: float
) -> NDArray[np.bool_]:
    """True for the users whose bucket under ``salt`` falls below ``share`` (e.g. the holdout)."""
    return bucket(salt, user_ids) < share


def _variant(item: Mapping[str, Any], index: int) -> Variant:
    where = f"variants[{index}]"
    if not isinstance(item, Mapping):
        raise ExperimentError(f"{where}: expected an object with name, allocation, config")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name == HOLDOUT:
        raise ExperimentError(
            f"{where}.name: {name!r} must be 1-64 of a-z 0-9 _ - (and not {HOLDOUT!r})"
        )
    share = item.get("allocation")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ExperimentError(f"{where}.allocation: {share!r} must be a number in (0, 1]")
    return Variant(name, float(share), RankerConfig.parse(item.get("config", {}), where))


def _slots(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExperimentError(f"{where}.explore_slots: {value!r} must be an integer")
    if not 0 <= value <= MAX_EXPLORE_SLOTS:
        raise ExperimentError(f"{where}.explore_slots: {value} must be in 0..{MAX_EXPLORE_SLOTS}")
    return value


def _bar(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExperimentError(f"{where}.min_score: {value!r} must be a finite number")
    return float(value)


def _trade_off(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ExperimentError(f"{where}.diversity: {value!r} must be a number in [0, 1]")
    return float(value)


def _weights(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise ExperimentError(f"{where}.weights: expected an object of component: multiplier")
    known = sorted(c.name for c in COMPONENTS if c.name != "hybrid")
    for name, factor in value.items():
        if name not in known:
            raise ExperimentError(f"{where}.weights: unknown component {name!r}; known: {known}")
        ok = not isinstance(factor, bool) and isinstance(factor, int | float)
        if not ok or not math.isfinite(factor) or factor < 0:
            raise ExperimentError(f"{where}.weights.{name}: {factor!r} must be a number >= 0")
    return tuple(sorted((str(k), float(v)) for k, v in value.items()))


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ExperimentError(f"{where}.uniform: {value!r} must be true or false")
    return value
