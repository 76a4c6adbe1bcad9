"""``paperboy digest run``'s wait, when another worker plans at the same moment."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

import api.digest_run as digest_run


def test_a_plan_committed_between_the_two_reads_is_still_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One due user; a worker elsewhere plans and sends their digest right after whichever
    # read comes first, as a stack's idle worker did in .ci/compose-test.
    planned = False

    def after_first_read(before: Any, after: Any) -> Any:
        nonlocal planned
        result = after if planned else before
        planned = True
        return result

    monkeypatch.setattr(digest_run, "due_users", lambda db, now: after_first_read(1, 0))
    monkeypatch.setattr(
        digest_run, "counts_since", lambda db, since: after_first_read(Counter(), Counter(sent=1))
    )
    monkeypatch.setattr(digest_run.time, "sleep", lambda s: None)

    since = datetime(2026, 12, 6, tzinfo=UTC)
    counts = digest_run.wait_until_final(None, since, 1, lambda: True, 5, lambda *_: None)  # type: ignore[arg-type]

    assert counts == Counter(sent=1)
