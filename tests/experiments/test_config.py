"""Experiment files: what a good one reads as, and how a bad one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.config import ConfigError, MetricSpec, load_config
from recsys.recommender import AlsRidgeMap, PopularityPrior

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"

GOOD = """
name = "small"
seeds = [0, 3]
control = "content"
metrics = ["recall@50", "mrr", "mrr@10", "auc", "coverage@100"]
[dataset]
kind = "citeulike"
path = "data/citeulike-a"
split = "p1"
[[variants]]
name = "content"
components = ["content"]
[[variants]]
name = "blend"
components = ["content", "als", "popularity"]
params.als = { factors = 16 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return path


def test_a_good_file_reads_into_typed_fields(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.name == "small" and config.seeds == (0, 3) and config.test == "permutation"
    assert config.dataset.path == (tmp_path / "data" / "citeulike-a").resolve()
    assert config.metrics[0] == MetricSpec("recall@50", "recall", 50)
    assert config.metrics[1] == MetricSpec("mrr", "mrr", None)
    assert [m.per_user for m in config.metrics] == [True, True, True, True, False]
    assert config.variant("blend").components == ("content", "als", "popularity")


def test_variant_components_get_their_params_defaults_and_the_seed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    content, als, popularity = config.variant("blend").make_components(seed=3)()
    assert isinstance(als, AlsRidgeMap) and als.factors == 16 and als.random_state == 3
    assert isinstance(popularity, PopularityPrior) and popularity.n_topics == 1


def test_the_example_configs_are_valid() -> None:
    for path in sorted(CONFIGS.glob("*.toml")):
        config = load_config(path)
        assert len(config.variants) >= 4, path


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ('["content", "als", "popularity"]', '["content", "foo"]', "variants[1].components",
         "unknown component 'foo' (known: content, linear, als, lightfm, popularity)"),
        ('"recall@50", "mrr"', '"recall@50", "recal@5"', "metrics[1]", "unknown metric 'recal@5'"),
        ('"recall@50", "mrr"', '"recall", "mrr"', "metrics[0]", "needs a cutoff"),
        ('"auc"', '"auc@5"', "metrics[3]", "over the full ranking"),
        ('control = "content"', 'control = "nope"', "control", "'nope' is not a variant"),
        ('split = "p1"', 'split = "temporal"', "dataset.split", "unknown split 'temporal'"),
        ('kind = "citeulike"', 'kind = "movielens"', "dataset.kind", "unknown kind"),
        ("seeds = [0, 3]", "seeds = [0, true]", "seeds[1]", "non-negative integer"),
        ("seeds = [0, 3]", 'seeds = "0"', "seeds", "expected a list"),
        ('name = "small"', 'nmae = "small"', "nmae", "unknown key"),
        ('name = "blend"', 'name = "content"', "variants[1].name", "duplicate variant name"),
        ("factors = 16", "factorz = 16", "variants[1].params.als.factorz", "unknown parameter"),
        ("factors = 16", "factors = 0", "variants[1].params.als", "factors"),
        ("params.als", "params.lightfm", "variants[1].params.lightfm", "not one of this variant"),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_with_its_name_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message


def test_a_missing_key_and_invalid_toml_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"x\.toml: metrics: missing"):
        load_config(write(tmp_path, GOOD.replace('metrics = ["recall@50", "mrr", "mrr@10", '
                                                 '"auc", "coverage@100"]', "")))  # fmt: skip
    with pytest.raises(ConfigError, match=r"x\.toml: invalid TOML"):
        load_config(write(tmp_path, "name = "))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_a_synthetic_dataset_reads_its_world_and_replay_settings(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "citeulike"\npath = "data/citeulike-a"\nsplit = "p1"',
                        'kind = "synthetic"\ndays = 3\nhorizon_days = 2\n'
                        "[dataset.world]\nn_users = 50\nn_papers = 300\n")  # fmt: skip
    dataset = load_config(write(tmp_path, text)).dataset
    assert (dataset.split, dataset.days, dataset.horizon_days) == ("temporal", 3, 2.0)
    assert dataset.world is not None and dataset.world.n_users == 50
    with pytest.raises(ConfigError, match=r"dataset\.world\.n_userz: unknown key"):
        load_config(write(tmp_path, text.replace("n_users", "n_userz")))
