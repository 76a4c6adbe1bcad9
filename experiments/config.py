"""Experiment files: a small TOML file read once into frozen dataclasses, checked at the door.

An experiment is dataset x split x variants x metrics x seeds::

    name = "four-rankers"
    seeds = [0, 1]
    control = "content"          # the variant every other one is compared with
    test = "permutation"         # or "t" (paired t-test); Holm correction across everything
    metrics = ["recall@50", "ndcg@10", "mrr", "auc", "coverage@100", "diversity@10"]

    [dataset]
    kind = "citeulike"           # "citeulike", "synthetic", "generic" or "logs"
    path = "../../../shared/data/citeulike-a"   # relative to this file
    split = "p10"                # citeulike: cold|p1|p10; synthetic: temporal; generic: all|unseen

    [[variants]]
    name = "content"
    components = ["content"]

    [[variants]]
    name = "hybrid"
    components = ["content", "linear", "als", "lightfm", "popularity"]
    params.als = { factors = 64 }  # optional constructor arguments per component

A variant with one component is that component alone; with several, the ``Hybrid`` of them
with blend weights learned on a validation split of the training data.

A synthetic dataset takes ``days`` (replayed days, default 7), ``horizon_days`` (how long after
a day starts its clicks count as relevant, default 1) and a ``[dataset.world]`` table with the
arguments of ``recsys.synth.generate_world``. A generic dataset names ``papers``, ``train`` and
``test`` files instead of ``path``. A logs dataset's ``path`` is a folder written by
``paperboy experiment export-logs``; it is read as the generic dataset of its files
(``split = "unseen"`` by default: rank the papers no one had read before the first digest).

Every error names the file, the key path and the reason, e.g.
``x.toml: variants[2].components: unknown component 'foo' (known: content, ...)``.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from recsys.recommender import (
    AlsRidgeMap,
    Component,
    ContentProfile,
    LightFMComponent,
    PerUserLinear,
    PopularityPrior,
)

COMPONENTS: Final[Mapping[str, type[Component]]] = {
    cls.name: cls
    for cls in (ContentProfile, PerUserLinear, AlsRidgeMap, LightFMComponent, PopularityPrior)
}
# As in ``recsys.recommender.hybrid.default_components``: the blend's popularity term is the
# global prior (one column), not a per-topic one.
COMPONENT_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {"popularity": {"n_topics": 1}}

METRICS_WITH_K: Final = ("recall", "precision", "ndcg", "hit_rate", "coverage", "diversity")
METRICS_WITH_K_TOO: Final = ("novelty",)
METRICS_OPTIONAL_K: Final = ("mrr",)  # "mrr" is over the full ranking, "mrr@k" truncated
METRICS_WITHOUT_K: Final = ("auc",)
KNOWN_METRICS: Final = (*METRICS_WITH_K, *METRICS_WITH_K_TOO, *METRICS_OPTIONAL_K, "auc")
DATASET_SPLITS: Final[Mapping[str, tuple[str, ...]]] = {
    "citeulike": ("cold", "p1", "p10"),
    "synthetic": ("temporal",),
    "generic": ("all", "unseen"),
    "logs": ("unseen", "all"),
}
# The generic files inside a folder written by ``experiment export-logs``.
_LOG_FILES: Final = ("papers.jsonl", "train.csv", "test.csv")
TestName = Literal["permutation", "t"]
TESTS: Final = ("permutation", "t")
DEFAULT_NOW: Final = datetime(2024, 6, 1, tzinfo=UTC)
_METRIC = re.compile(r"^(?P<kind>[a-z_]+)(?:@(?P<k>\d+))?$")


class ConfigError(ValueError):
    """A bad experiment file: ``str(error)`` is ``"<file>: <key path>: <reason>"``."""

    def __init__(self, path: Path, key: str, reason: str) -> None:
        self.path, self.key, self.reason = path, key, reason
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")


@dataclass(frozen=True)
class MetricSpec:
    """One metric as written in the file: ``kind`` and cutoff ``k`` (None for auc, full mrr)."""

    name: str
    kind: str
    k: int | None

    @property
    def per_user(self) -> bool:
        """Whether the metric has one value per user (all but catalogue coverage)."""
        return self.kind != "coverage"


@dataclass(frozen=True)
class WorldConfig:
    """Arguments of ``recsys.synth.generate_world``."""

    n_users: int = 1000
    n_papers: int = 3000
    n_topics: int = 12
    clicks_per_user: int = 8
    seed: int = 0
    now: datetime = DEFAULT_NOW


@dataclass(frozen=True)
class DatasetConfig:
    """Where the data comes from and how it is split (paths already resolved)."""

    kind: str
    split: str
    path: Path | None = None
    papers: Path | None = None
    train: Path | None = None
    test: Path | None = None
    world: WorldConfig | None = None
    days: int = 7
    horizon_days: float = 1.0


@dataclass(frozen=True)
class VariantConfig:
    """A named ranker: one component alone, or the blend of several."""

    name: str
    components: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def make_components(self, seed: int) -> Callable[[], list[Component]]:
        """A factory of fresh, unfitted components (what ``fit_models`` asks for)."""
        return lambda: [
            build_component(name, self.params.get(name, {}), seed) for name in self.components
        ]


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment file."""

    path: Path
    name: str
    seeds: tuple[int, ...]
    control: str
    metrics: tuple[MetricSpec, ...]
    dataset: DatasetConfig
    variants: tuple[VariantConfig, ...]
    test: TestName = "permutation"
    n_boot: int = 2000
    description: str = ""

    def variant(self, name: str) -> VariantConfig:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)


def build_component(name: str, params: Mapping[str, Any], seed: int) -> Component:
    """A fresh component: its defaults, then ``params``; ``random_state`` is the seed if unset."""
    cls = COMPONENTS[name]
    kwargs = {**COMPONENT_DEFAULTS.get(name, {}), **params}
    if "random_state" in inspect.signature(cls).parameters:
        kwargs.setdefault("random_state", seed)
    return cls(**kwargs)


# --- reading --------------------------------------------------------------------------------
def load_config(path: Path) -> ExperimentConfig:
    """Read and check an experiment file.

    Raises
    ------
    ConfigError
        Naming the file, the key path and the reason: unreadable or invalid TOML, a missing
        or unknown key, a value of the wrong type, an unknown component, metric or split, a
        duplicate variant name or a control that is not a variant.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the file ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"invalid TOML ({exc})") from exc
    return _Reader(path).experiment(raw)


class _Reader:
    """Typed getters that raise :class:`ConfigError` with the file and key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason)

    def keys(self, table: Mapping[str, Any], where: str, known: Sequence[str]) -> None:
        for key in table:
            if key not in known:
                label = f"{where}.{key}" if where else key
                raise self.fail(label, f"unknown key (known: {', '.join(known)})")

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
    ) -> Any:
        label = f"{where}.{key}" if where else key
        if key not in table:
            if default is ...:
                raise self.fail(label, "missing")
            return default
        value = table[key]
        # bool is an int in Python, but `seeds = [true]` is a mistake worth naming.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(label, f"expected {_type_name(kind)}, got {value!r}")
        return value

    def int_at_least(
        self, table: Mapping[str, Any], key: str, where: str, low: int, default: Any = ...
    ) -> int:
        value = self.get(table, key, where, int, default)
        if value < low:
            raise self.fail(f"{where}.{key}" if where else key, f"must be >= {low}, got {value}")
        return int(value)

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> list[str]:
        values = self.get(table, key, where, list)
        label = f"{where}.{key}" if where else key
        if not values:
            raise self.fail(label, "must not be empty")
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self.fail(f"{label}[{i}]", f"expected a string, got {value!r}")
        if len(set(values)) != len(values):
            raise self.fail(label, f"duplicate entries in {values}")
        return list(values)

    def relative_path(self, table: Mapping[str, Any], key: str, where: str) -> Path:
        value = Path(self.get(table, key, where, str))
        return value if value.is_absolute() else (self.path.parent / value).resolve()

    # --- sections ---------------------------------------------------------------------------
    def experiment(self, raw: Mapping[str, Any]) -> ExperimentConfig:
        known = (
            "name",
            "description",
            "seeds",
            "control",
            "test",
            "n_boot",
            "metrics",
            "dataset",
            "variants",
        )
        self.keys(raw, "", known)
        variants = self.variants(self.get(raw, "variants", "", list))
        names = [variant.name for variant in variants]
        control = self.get(raw, "control", "", str, names[0])
        if control not in names:
            raise self.fail(
                "control", f"{control!r} is not a variant (variants: {', '.join(names)})"
            )
        test = self.get(raw, "test", "", str, "permutation")
        if test not in TESTS:
            raise self.fail("test", f"unknown test {test!r} (known: {', '.join(TESTS)})")
        return ExperimentConfig(
            path=self.path,
            name=self.get(raw, "name", "", str),
            description=self.get(raw, "description", "", str, ""),
            seeds=self.seeds(raw),
            control=control,
            metrics=tuple(
                self.metric(name, i) for i, name in enumerate(self.strings(raw, "metrics", ""))
            ),
            dataset=self.dataset(self.get(raw, "dataset", "", dict)),
            variants=tuple(variants),
            test=cast(TestName, test),
            n_boot=self.int_at_least(raw, "n_boot", "", 100, 2000),
        )

    def seeds(self, raw: Mapping[str, Any]) -> tuple[int, ...]:
        seeds = self.get(raw, "seeds", "", list, [0])
        if not seeds:
            raise self.fail("seeds", "must not be empty")
        for i, seed in enumerate(seeds):
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise self.fail(f"seeds[{i}]", f"expected a non-negative integer, got {seed!r}")
        if len(set(seeds)) != len(seeds):
            raise self.fail("seeds", f"duplicate seeds in {seeds}")
        return tuple(seeds)

    def metric(self, name: str, i: int) -> MetricSpec:
        match = _METRIC.match(name)
        kind = match["kind"] if match else name
        if match is None or kind not in KNOWN_METRICS:
            known = (
                "recall@k, precision@k, ndcg@k, hit_rate@k, mrr, mrr@k, auc, coverage@k, "
                "diversity@k, novelty@k"
            )
            raise self.fail(f"metrics[{i}]", f"unknown metric {name!r} (known: {known})")
        k = None if match["k"] is None else int(match["k"])
        if k is None and kind not in (*METRICS_OPTIONAL_K, *METRICS_WITHOUT_K):
            raise self.fail(f"metrics[{i}]", f"{kind} needs a cutoff, e.g. '{kind}@10'")
        if k is not None and kind in METRICS_WITHOUT_K:
            raise self.fail(f"metrics[{i}]", f"{kind} is over the full ranking; write '{kind}'")
        if k == 0:
            raise self.fail(f"metrics[{i}]", "the cutoff must be >= 1")
        return MetricSpec(name, kind, k)

    def dataset(self, raw: Mapping[str, Any]) -> DatasetConfig:
        kind = self.get(raw, "kind", "dataset", str)
        if kind not in DATASET_SPLITS:
            raise self.fail(
                "dataset.kind", f"unknown kind {kind!r} (known: {', '.join(DATASET_SPLITS)})"
            )
        splits = DATASET_SPLITS[kind]
        split = self.get(raw, "split", "dataset", str, splits[0])
        if split not in splits:
            raise self.fail(
                "dataset.split", f"unknown split {split!r} for {kind} (known: {', '.join(splits)})"
            )
        readers = {"citeulike": self.citeulike, "synthetic": self.synthetic}
        readers |= {"generic": self.generic, "logs": self.logs}
        return readers[kind](raw, split)

    def citeulike(self, raw: Mapping[str, Any], split: str) -> DatasetConfig:
        self.keys(raw, "dataset", ("kind", "split", "path"))
        return DatasetConfig("citeulike", split, path=self.relative_path(raw, "path", "dataset"))

    def generic(self, raw: Mapping[str, Any], split: str) -> DatasetConfig:
        self.keys(raw, "dataset", ("kind", "split", "papers", "train", "test"))
        papers, train, test = (
            self.relative_path(raw, k, "dataset") for k in ("papers", "train", "test")
        )
        return DatasetConfig("generic", split, papers=papers, train=train, test=test)

    def logs(self, raw: Mapping[str, Any], split: str) -> DatasetConfig:
        """A folder written by ``paperboy experiment export-logs``: its generic files."""
        self.keys(raw, "dataset", ("kind", "split", "path"))
        folder = self.relative_path(raw, "path", "dataset")
        files = [folder / name for name in _LOG_FILES]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise self.fail(
                "dataset.path", f"{missing} missing: is it a folder from 'experiment export-logs'?"
            )
        papers, train, test = files
        return DatasetConfig("generic", split, papers=papers, train=train, test=test)

    def synthetic(self, raw: Mapping[str, Any], split: str) -> DatasetConfig:
        self.keys(raw, "dataset", ("kind", "split", "days", "horizon_days", "world"))
        horizon = self.get(raw, "horizon_days", "dataset", (int, float), 1.0)
        if not horizon > 0:
            raise self.fail("dataset.horizon_days", f"must be > 0, got {horizon}")
        return DatasetConfig(
            "synthetic",
            split,
            world=self.world(self.get(raw, "world", "dataset", dict, {})),
            days=self.int_at_least(raw, "days", "dataset", 1, 7),
            horizon_days=float(horizon),
        )

    def world(self, raw: Mapping[str, Any]) -> WorldConfig:
        where = "dataset.world"
        sizes = ("n_users", "n_papers", "n_topics", "clicks_per_user", "seed")
        self.keys(raw, where, (*sizes, "now"))
        defaults = WorldConfig()
        values = {
            key: self.int_at_least(raw, key, where, 0, getattr(defaults, key)) for key in sizes
        }
        now = self.get(raw, "now", where, datetime, defaults.now)
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        return WorldConfig(**values, now=now)

    def variants(self, raw: list[Any]) -> list[VariantConfig]:
        if not raw:
            raise self.fail("variants", "must not be empty")
        variants: list[VariantConfig] = []
        for i, table in enumerate(raw):
            where = f"variants[{i}]"
            if not isinstance(table, dict):
                raise self.fail(where, f"expected a table, got {table!r}")
            variant = self.variant(table, where)
            if variant.name in {v.name for v in variants}:
                raise self.fail(f"{where}.name", f"duplicate variant name {variant.name!r}")
            variants.append(variant)
        return variants

    def variant(self, raw: Mapping[str, Any], where: str) -> VariantConfig:
        self.keys(raw, where, ("name", "components", "params"))
        name = self.get(raw, "name", where, str)
        components = self.strings(raw, "components", where)
        for component in components:
            if component not in COMPONENTS:
                known = ", ".join(COMPONENTS)
                raise self.fail(
                    f"{where}.components", f"unknown component {component!r} (known: {known})"
                )
        params = self.get(raw, "params", where, dict, {})
        for component, kwargs in params.items():
            self.check_params(component, kwargs, components, f"{where}.params.{component}")
        return VariantConfig(name, tuple(components), params)

    def check_params(self, component: str, kwargs: Any, used: list[str], where: str) -> None:
        if component not in used:
            raise self.fail(where, f"{component!r} is not one of this variant's components {used}")
        if not isinstance(kwargs, dict):
            raise self.fail(where, f"expected a table of constructor arguments, got {kwargs!r}")
        known = [p for p in inspect.signature(COMPONENTS[component]).parameters if p != "self"]
        for key in kwargs:
            if key not in known:
                raise self.fail(f"{where}.{key}", f"unknown parameter (known: {', '.join(known)})")
        try:
            build_component(component, kwargs, 0)
        except (TypeError, ValueError) as exc:
            raise self.fail(where, str(exc)) from exc


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
        bool: "true or false",
        datetime: "a date-time",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
