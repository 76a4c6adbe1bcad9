"""Fixtures for the model store tests: small versions written on one host and published."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from recsys.catalog.embeddings import EmbeddingStore
from recsys.training import artifacts, store
from tests.conftest import NOW


@dataclass(frozen=True)
class Host:
    """One host's data folder: its model cache and embedding stores."""

    root: Path

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"


Publish = Callable[..., str]


def publish_version(
    session: Session,
    host: Host,
    version: str,
    manifest: dict[str, Any] | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> str:
    """Write ``version`` on ``host`` (arrays, manifest, a 3-row embedding store), publish it."""
    arrays = arrays if arrays is not None else {"w": np.arange(6, dtype=np.float32)}
    artifacts.write_artifact(host.models, arrays, manifest or {}, version=version)
    vectors = EmbeddingStore(host.embeddings / version, dim=2)
    vectors.append(np.array([10, 11, 12]), np.arange(6, dtype=np.float32).reshape(3, 2))
    store.publish(session, version, host.models / version, host.embeddings / version, NOW)
    return version


@pytest.fixture()
def trainer(tmp_path: Path) -> Host:
    return Host(tmp_path / "trainer")


@pytest.fixture()
def other(tmp_path: Path) -> Host:
    return Host(tmp_path / "other")
