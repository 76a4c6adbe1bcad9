"""Click attribution and click-through per arm, on a small hand-made log."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.orm import Session

from recsys.db.models import DigestItemRow, DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.online.analysis import (
    Click,
    attributed_clicks,
    bootstrap_ratio_interval,
    online_report,
    per_position_ctr,
    wilson_interval,
)
from recsys.online.assignment import ExperimentError, Variant
from recsys.online.experiments import ExperimentPlan, create_experiment
from tests.conftest import NOW

Z_95 = 1.959963984540054

WEEK = timedelta(days=7)
SENT = NOW - timedelta(days=10)  # these digests' windows have closed


def _user(s: Session, name: str) -> int:
    user = UserRow(email=f"{name}@example.org", created_at=NOW)
    s.add(user)
    s.flush()
    return user.id


def _papers(s: Session, n: int) -> list[int]:
    rows = [PaperRow(title_key=f"p{i}", title=f"P{i}", url="u", created_at=NOW, updated_at=NOW)
            for i in range(n)]  # fmt: skip
    s.add_all(rows)
    s.flush()
    return [p.id for p in rows]


def _digest(
    s: Session, user_id: int, exp_id: int, variant: str, papers: list[int], **kw: object
) -> int:
    status = "sent" if papers else "skipped"
    digest = DigestRow(user_id=user_id, period=str(kw.get("period", "p")), status=status,
                       experiment_id=exp_id, variant=variant, created_at=NOW, updated_at=NOW,
                       sent_at=kw.get("sent_at", SENT if papers else None))  # fmt: skip
    s.add(digest)
    s.flush()
    for position, paper_id in enumerate(papers):
        s.add(DigestItemRow(digest_id=digest.id, paper_id=paper_id, position=position, score=1.0))
    return digest.id


def _click(s: Session, user_id: int, paper_id: int, digest_id: int | None, at: timedelta,
           kind: str = "click", suspect: bool = False) -> None:  # fmt: skip
    s.add(EventRow(user_id=user_id, paper_id=paper_id, kind=kind, digest_id=digest_id,
                   created_at=SENT + at, suspect=suspect))  # fmt: skip


@pytest.fixture()
def log(db: Database) -> dict[str, int]:
    """control: Uma (3 shown, 2 clicked), Vic (3 shown, clicked after the window; plus one
    digest still in its window). explore: Wes (2 shown, 1 clicked), Xia (skipped)."""
    with db.session() as s:
        exp = create_experiment(s, "e", [Variant("control", 0.5), Variant("explore", 0.5)], NOW)
        uma, vic, wes, xia = (_user(s, n) for n in ("uma", "vic", "wes", "xia"))
        p = _papers(s, 6)
        d1 = _digest(s, uma, exp.id, "control", p[:3])
        d2 = _digest(s, vic, exp.id, "control", p[:3])
        d3 = _digest(s, vic, exp.id, "control", p[3:5], period="q", sent_at=NOW - timedelta(days=1))
        d4 = _digest(s, wes, exp.id, "explore", p[4:6])
        _digest(s, xia, exp.id, "explore", [])
        _click(s, uma, p[0], d1, timedelta(hours=2))
        _click(s, uma, p[2], d1, timedelta(days=1))
        _click(s, uma, p[2], d1, timedelta(days=2))  # the same paper again: counted once
        _click(s, uma, p[1], None, timedelta(hours=1))  # not from the digest's link
        _click(s, uma, p[5], d1, timedelta(hours=1))  # a paper the digest did not show
        _click(s, uma, p[1], d1, timedelta(hours=1), kind="more")  # feedback, not a click
        _click(s, vic, p[1], d2, timedelta(days=7, seconds=1))  # after the 7-day window
        _click(s, vic, p[3], d3, timedelta(days=9, hours=1))  # d3 is still in its window
        _click(s, wes, p[4], d4, timedelta(seconds=2), suspect=True)  # a link scanner
        _click(s, wes, p[5], d4, timedelta(days=6, hours=23))
    return {"d1": d1, "d2": d2, "d3": d3, "d4": d4, **{f"p{i}": pid for i, pid in enumerate(p)}}


def test_clicks_count_within_the_window_only(db: Database, log: dict[str, int]) -> None:
    with db.session() as s:
        clicks = attributed_clicks(s, WEEK)
        longer = attributed_clicks(s, timedelta(days=8))
    assert [(c.digest_id, c.position) for c in clicks] == [
        (log["d1"], 0), (log["d1"], 2), (log["d3"], 0), (log["d4"], 1),
    ]  # fmt: skip
    assert clicks[1] == Click(log["d1"], 2, log["p2"], SENT + timedelta(days=1))
    assert (log["d2"], 1) in [(c.digest_id, c.position) for c in longer]


def test_the_report_gives_the_hand_computed_rates_and_intervals(
    db: Database, log: dict[str, int]
) -> None:
    with db.session() as s:
        report = online_report(s, "e", NOW, WEEK)
    control, explore = report["arms"]["control"], report["arms"]["explore"]

    assert {k: control[k] for k in ("users", "digests", "skipped", "pending", "analysed")} == {
        "users": 2, "digests": 3, "skipped": 0, "pending": 1, "analysed": 2,
    }  # fmt: skip
    assert (control["shown"], control["clicked"]) == (6, 2)
    assert control["ctr"] == pytest.approx(1 / 3)
    # Wilson, z = 1.96, p = 2/6: centre 0.39839, half-width 0.30162.
    assert control["ctr_wilson"] == pytest.approx((0.09677, 0.70001), abs=1e-5)
    # Over users: Uma 2/3, Vic 0/3; a resample is both Vic (1/4 of the time), so the 2.5%
    # point is 0, or both Uma (1/4), so the 97.5% point is 2/3.
    assert control["ctr_bootstrap"] == pytest.approx((0.0, 2 / 3))
    assert control["digest_ctr"] == 0.5
    assert control["digest_ctr_wilson"] == pytest.approx(wilson_interval(1, 2))

    assert {k: explore[k] for k in ("users", "digests", "skipped", "analysed")} == {
        "users": 2, "digests": 2, "skipped": 1, "analysed": 1,
    }  # fmt: skip
    assert (explore["shown"], explore["clicked"], explore["ctr"]) == (2, 1, 0.5)
    assert explore["ctr_wilson"] == pytest.approx((0.09453, 0.90547), abs=1e-5)
    assert explore["ctr_bootstrap"] == pytest.approx((0.5, 0.5))  # one user: no spread
    assert explore["digest_ctr"] == 1.0


def test_wilson_matches_published_values() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_the_bootstrap_resamples_users_not_items() -> None:
    rng = np.random.default_rng(0)
    low, high = bootstrap_ratio_interval(np.array([10.0, 0.0]), np.array([10.0, 10.0]), rng)
    assert (low, high) == pytest.approx((0.0, 1.0))  # items alone would give a narrow band


def _plan(horizon_digests: int | None = None, ends_at: datetime | None = None) -> ExperimentPlan:
    variants = (Variant("control", 0.5), Variant("explore", 0.5))
    return ExperimentPlan(
        "e", variants, "control", horizon_digests=horizon_digests, ends_at=ends_at
    )


def _positions(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["position"], r["shown"], r["clicked"]) for r in rows]


def test_the_interim_result_counts_open_digests_with_their_clicks_so_far(
    db: Database, log: dict[str, int]
) -> None:
    with db.session() as s:
        report = online_report(s, "e", NOW, WEEK)
    interim = report["interim"]
    control, explore = interim["arms"]["control"], interim["arms"]["explore"]
    assert interim["open_digests"] == 1 and interim["interval"].startswith("always-valid")
    # d1, d2 and the still-open d3 (clicked at its first position an hour after sending).
    assert (control["digests"], control["open"], control["shown"], control["clicked"]) == (
        3, 1, 8, 3,
    )  # fmt: skip
    assert control["clicks_per_digest"] == 1.0 and control["ctr"] == pytest.approx(3 / 8)
    assert _positions(control["positions"]) == [(1, 3, 2), (2, 3, 0), (3, 2, 1)]
    assert _positions(explore["positions"]) == [(1, 1, 0), (2, 1, 1)]  # the scanner's is out
    assert interim["decision"].startswith("no decision yet: arm(s) control, explore have fewer")
    assert report["final"] == {"status": "no horizon planned: give the experiment file's "
                               "horizon to read one"}  # fmt: skip


def test_the_final_result_waits_for_the_horizon_and_the_click_windows(
    db: Database, log: dict[str, int]
) -> None:
    with db.session() as s:
        short = online_report(s, "e", NOW, WEEK, plan=_plan(horizon_digests=100))
        waiting = online_report(s, "e", NOW, WEEK, plan=_plan(ends_at=NOW - timedelta(hours=12)))
        later = online_report(s, "e", NOW, WEEK, plan=_plan(ends_at=NOW + timedelta(days=1)))
    assert short["final"]["status"] == (
        "horizon not reached: 100 digests per arm planned, sent so far: control 3, explore 1"
    )
    # d3, sent a day ago and inside the horizon, is clickable for 6 more days.
    assert waiting["final"]["status"] == (
        "horizon reached; click windows close by 2026-11-27 07:00 UTC"
    )
    assert later["final"]["status"].startswith("horizon not reached: the experiment runs until")


def test_the_final_result_is_the_fixed_horizon_one_on_the_planned_digests(
    db: Database, log: dict[str, int]
) -> None:
    with db.session() as s:
        report = online_report(s, "e", NOW, WEEK, plan=_plan(ends_at=NOW - timedelta(days=2)))
    final = report["final"]
    assert final["status"].startswith("final") and final["interval"].startswith("fixed")
    control = final["arms"]["control"]
    assert (control["digests"], control["shown"], control["clicked"]) == (2, 6, 2)
    assert _positions(control["positions"]) == [(1, 2, 1), (2, 2, 0), (3, 2, 1)]
    # Digests c = (2, 0), s = (3, 3): residuals (1, -1), variance 2 / 1 / 3**2 / 2 = 1/9.
    assert control["ctr_interval"] == pytest.approx((1 / 3 - Z_95 / 3, 1 / 3 + Z_95 / 3))
    # One explore digest: no variance yet, so no interval and no verdict.
    assert final["arms"]["explore"]["ctr_interval"] == (None, None)
    assert final["differences"]["explore"]["verdict"] == "undecided"


def test_a_plan_with_other_variants_is_refused(db: Database, log: dict[str, int]) -> None:
    plan = ExperimentPlan("e", (Variant("control", 0.5), Variant("b", 0.5)), "control")
    with db.session() as s, pytest.raises(ExperimentError, match="are not the experiment's"):
        online_report(s, "e", NOW, WEEK, plan=plan)


def test_per_position_ctr_divides_by_the_digests_that_reached_each_position() -> None:
    rows = per_position_ctr([[0, 1, 2], [0, 1], [0]], [[2], [0, 1], []])
    assert [(r["position"], r["shown"], r["clicked"], r["ctr"]) for r in rows] == [
        (1, 3, 1, 1 / 3), (2, 2, 1, 0.5), (3, 1, 1, 1.0),
    ]  # fmt: skip
    assert per_position_ctr([], []) == []


def test_a_past_now_rereads_the_log_as_it_stood_then(db: Database, log: dict[str, int]) -> None:
    with db.session() as s:
        report = online_report(s, "e", SENT + timedelta(days=1), WEEK)
    control, explore = report["interim"]["arms"]["control"], report["interim"]["arms"]["explore"]
    # d3 was not sent yet; d1's clicks at 2 h and at exactly 1 day count, d4's (at 6 days) not.
    assert (control["digests"], control["open"], control["clicked"]) == (2, 2, 2)
    assert (explore["digests"], explore["clicked"]) == (1, 0)
