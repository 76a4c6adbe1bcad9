"""Listing the published model versions and rolling back to the one before."""

from __future__ import annotations

import pytest

from recsys.db.session import Database
from recsys.training import store
from recsys.training.versions import NoPreviousVersion, describe_versions, rollback
from tests.conftest import NOW
from tests.recsys.training.conftest import Host, publish_version


def _versions(db: Database, host: Host, *names: str) -> None:
    with db.session() as s:
        for n, name in enumerate(names):
            manifest = {"created_at": f"2026-11-2{n}", "data": {"n_papers": 10 * (n + 1)}}
            publish_version(s, host, name, manifest)


def test_versions_are_listed_oldest_first_with_the_active_one_marked(
    db: Database, trainer: Host
) -> None:
    _versions(db, trainer, "v1", "v2")
    with db.session() as s:
        store.activate(s, "v2", NOW)
        listed = describe_versions(s)
    assert [(v["version"], v["active"], v["n_papers"]) for v in listed] == [
        ("v1", False, 10),
        ("v2", True, 20),
    ]


def test_rollback_activates_the_version_before_the_active_one(db: Database, trainer: Host) -> None:
    _versions(db, trainer, "v1", "v2", "v3")
    with db.session() as s:
        store.activate(s, "v3", NOW)
        assert rollback(s, NOW) == "v2"
        assert rollback(s, NOW) == "v1"
        assert store.active_version(s) == "v1"
        with pytest.raises(NoPreviousVersion, match="no published version older than 'v1'"):
            rollback(s, NOW)
