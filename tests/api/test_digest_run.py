"""``paperboy digest run``: refuses to plan without a model, finishes what an earlier run
left half-done (through a real worker), and counts a plan made elsewhere mid-wait."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import api.digest_run as digest_run
from api.demo import load_world
from api.digest_run import NoModel, run_digests
from recsys.db.models import DigestRow
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.settings import Settings
from recsys.synth import generate_world
from recsys.training.model import load_active_model
from recsys.training.nightly import train

N_USERS = 20


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def test_without_a_model_nothing_is_planned(db: Database, settings: Settings) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        load_world(s, generate_world(3, 50, seed=1, now=now), now)
    with pytest.raises(NoModel, match="paperboy train"):
        run_digests(settings, timeout_s=30, progress=_quiet)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DigestRow)) == 0


@pytest.mark.integration
def test_a_rerun_finishes_what_an_interrupted_run_left(db: Database, settings: Settings) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        load_world(s, generate_world(N_USERS, 300, seed=3, now=now), now)
        train(s, settings, now)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    with db.session() as s:  # an earlier run planned everyone, ranked five, then died
        planned = plan_due(s, now)
        rank_digests(s, planned[:5], model, now, lookback=timedelta(days=7))
    with db.session() as s:
        states = dict(s.execute(select(DigestRow.status, func.count()).group_by("status")).all())
    assert states == {"ranked": 5, "planned": N_USERS - 5}

    counts = run_digests(settings, timeout_s=240, progress=_quiet)

    assert counts == {"sent": N_USERS, "resumed": N_USERS}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DigestRow)) == N_USERS  # none twice


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
        digest_run,
        "counts_since",
        lambda db, since, resumed=(): after_first_read(Counter(), Counter(sent=1)),
    )
    monkeypatch.setattr(digest_run.time, "sleep", lambda s: None)

    since = datetime(2026, 12, 6, tzinfo=UTC)
    counts = digest_run.wait_until_final(None, since, 1, lambda: True, 5, lambda *_: None)  # type: ignore[arg-type]

    assert counts == Counter(sent=1)
