"""What an operator asks of the model versions on disk: which exist, which is active, and
going back to the one before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.training import artifacts


class NoPreviousVersion(RuntimeError):
    """There is no version older than the active one to go back to."""


def describe_versions(models_dir: Path) -> list[dict[str, Any]]:
    """Each complete version, oldest first: name, active or not, what it was trained on, and
    its guard-rail verdict (``guardrail``: None for versions trained before the guard-rail).

    A version refused by the guard-rail can still be activated by hand
    (``artifacts.activate``): the verdict advises, the operator decides.
    """
    active = artifacts.active_version(models_dir)
    out = []
    for version in artifacts.list_versions(models_dir):
        manifest = artifacts.read_manifest(models_dir, version)
        data = manifest.get("data", {})
        out.append(
            {
                "version": version,
                "active": version == active,
                "created_at": manifest.get("created_at"),
                "n_papers": data.get("n_papers"),
                "n_users": data.get("n_users"),
                "n_events": data.get("n_events"),
                "blend": manifest.get("blend", {}).get("source", ""),
                "guardrail": manifest.get("guardrail"),
            }
        )
    return out


def rollback(models_dir: Path) -> str:
    """Activate the version before the active one; return its name."""
    versions = artifacts.list_versions(models_dir)
    active = artifacts.active_version(models_dir)
    older = versions[: versions.index(active)] if active in versions else []
    if not older:
        raise NoPreviousVersion(f"no version older than {active!r} in {models_dir}")
    artifacts.activate(models_dir, older[-1])
    return older[-1]
