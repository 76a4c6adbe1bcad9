"""Online experiment files (``load_plan``): a good file, and each kind of error with its line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsys.online.assignment import RankerConfig, Variant
from recsys.online.experiments import ExperimentPlan, PlanError, load_plan

GOOD = """\
name = "explore2"
description = "two exploration slots against none"
salt = "s1"
alpha = 0.1
control = "control"
horizon = 5000

[[variant]]
name = "control"
allocation = 0.5

[[variant]]
name = "explore"
allocation = 0.5
[variant.config]
explore_slots = 2
weights = { als = 0 }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_reads_into_its_plan(tmp_path: Path) -> None:
    plan = load_plan(_write(tmp_path, GOOD))
    assert plan == ExperimentPlan(
        name="explore2",
        variants=(
            Variant("control", 0.5),
            Variant("explore", 0.5, RankerConfig(explore_slots=2, weights=(("als", 0.0),))),
        ),
        control="control", salt="s1", alpha=0.1, horizon_digests=5000, ends_at=None,
        description="two exploration slots against none",
    )  # fmt: skip
    assert plan.horizon_dict() == {"digests_per_arm": 5000}


def test_defaults_and_an_end_date_horizon(tmp_path: Path) -> None:
    text = 'name = "x"\nhorizon = 2027-01-31\n[[variant]]\nname = "a"\nallocation = 1\n'
    plan = load_plan(_write(tmp_path, text))
    assert (plan.control, plan.alpha, plan.salt) == ("a", 0.05, None)
    assert plan.ends_at == datetime(2027, 1, 31, tzinfo=UTC) and plan.horizon_digests is None


@pytest.mark.parametrize(
    ("replace", "by", "line", "says"),
    [
        ("alpha = 0.1", "alpha = 0.1\nalpha = 0.2", 5, "invalid TOML"),
        ("alpha = 0.1", "alpha = 0.7", 4, "alpha: 0.7 must be a number in (0, 0.5)"),
        ("alpha = 0.1", "alhpa = 0.1", 4, "alhpa: unknown key"),
        ('control = "control"', 'control = "nope"', 5, "control: 'nope' is not a variant"),
        ("horizon = 5000", "horizon = 10", 6, "horizon: 10 digests per arm; at least 100"),
        ("horizon = 5000", 'horizon = "soon"', 6, "expected digests per arm (an integer) or"),
        ('name = "explore2"', 'name = "bad name!"', 1, "name: 'bad name!' must be"),
        ("allocation = 0.5\n\n[[variant]]", "allocation = 1.5\n\n[[variant]]", 8,
         "variant[0].allocation: 1.5 must be a number in (0, 1]"),
        ("explore_slots = 2", "explore_slots = 99", 12, "variant[1].explore_slots: 99 must be"),
        ("explore_slots = 2", "explroe_slots = 2", 12, "variant[1]: unknown key(s) ['explroe"),
        ("allocation = 0.5\n[variant", "allocation = 0.6\n[variant", 8, "allocations sum to 1.1"),
        ('name = "explore"', 'name = "control"', 8, "names must be distinct"),
        ('name = "explore"', 'name = "explore"\nshare = 1', 12, "variant[1]: unknown key(s)"),
    ],
)  # fmt: skip
def test_each_error_names_the_file_the_line_and_the_reason(
    tmp_path: Path, replace: str, by: str, line: int, says: str
) -> None:
    assert replace in GOOD
    path = _write(tmp_path, GOOD.replace(replace, by, 1))
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert says in str(caught.value)


def test_a_file_without_variants_or_name_or_readable_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"exp.toml:1: name: missing"):
        load_plan(_write(tmp_path, "alpha = 0.1\n"))
    with pytest.raises(PlanError, match=r"variant: missing: add \[\[variant\]\] tables"):
        load_plan(_write(tmp_path, 'name = "x"\n'))
    with pytest.raises(PlanError, match="cannot read the file"):
        load_plan(tmp_path / "absent.toml")
