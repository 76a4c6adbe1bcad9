"""What an operator asks of the published model versions: which exist, which is active,
and going back to the one before."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from recsys.training import store


class NoPreviousVersion(RuntimeError):
    """There is no version older than the active one to go back to."""


def describe_versions(session: Session) -> list[dict[str, Any]]:
    """Each published version, oldest first: name, active or not, what it was trained on, and
    its guard-rail verdict (``guardrail``: None for versions trained before the guard-rail).

    A version refused by the guard-rail can still be activated by hand
    (``store.activate``): the verdict advises, the operator decides.
    """
    active = store.active_version(session)
    out = []
    for version in store.list_versions(session):
        manifest = store.read_manifest(session, version)
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


def rollback(session: Session, now: datetime) -> str:
    """Activate the version before the active one, on every host; return its name."""
    versions = store.list_versions(session)
    active = store.active_version(session)
    older = versions[: versions.index(active)] if active in versions else []
    if not older:
        raise NoPreviousVersion(f"no published version older than {active!r}")
    store.activate(session, older[-1], now)
    return older[-1]
