"""The Docker image installs from constraints.txt with --no-index: a dependency declared in
pyproject.toml but missing from the lock fails the image build, which only the compose test
would otherwise notice, minutes later."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import PROJECT_ROOT


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lines = (PROJECT_ROOT / "constraints.txt").read_text().splitlines()
    pinned = {_name(line) for line in lines if line and not line.startswith("#")}

    missing = sorted({_name(r) for r in project["dependencies"]} - pinned)

    assert not missing, f"run .ci/lock-constraints: constraints.txt lacks {missing}"
