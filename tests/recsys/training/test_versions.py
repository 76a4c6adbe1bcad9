"""Listing model versions and rolling back to the one before."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.training import artifacts
from recsys.training.versions import NoPreviousVersion, describe_versions, rollback


def _versions(folder: Path, *names: str) -> None:
    for n, name in enumerate(names):
        manifest = {"created_at": f"2026-11-2{n}", "data": {"n_papers": 10 * (n + 1)}}
        artifacts.write_artifact(folder, {}, manifest, version=name)


def test_versions_are_listed_oldest_first_with_the_active_one_marked(tmp_path: Path) -> None:
    _versions(tmp_path, "v1", "v2")
    artifacts.activate(tmp_path, "v2")
    listed = describe_versions(tmp_path)
    assert [(v["version"], v["active"], v["n_papers"]) for v in listed] == [
        ("v1", False, 10),
        ("v2", True, 20),
    ]


def test_rollback_activates_the_version_before_the_active_one(tmp_path: Path) -> None:
    _versions(tmp_path, "v1", "v2", "v3")
    artifacts.activate(tmp_path, "v3")
    assert rollback(tmp_path) == "v2"
    assert rollback(tmp_path) == "v1"
    assert artifacts.active_version(tmp_path) == "v1"
    with pytest.raises(NoPreviousVersion, match="no version older than 'v1'"):
        rollback(tmp_path)
