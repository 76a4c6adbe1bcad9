"""The ranking log as read back: arms and their counts, each digest's items, pool and clicks."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from recsys.db.models import CandidatePoolRow, DigestItemRow, DigestRow, EventRow, PaperRow, UserRow
from recsys.db.session import Database
from recsys.digests.exploration import pack_mask
from recsys.online.logged import logged_arms, stream_logged_digests
from tests.conftest import NOW

WEEK = timedelta(days=7)
SENT = NOW - timedelta(days=10)  # windows closed by NOW


def _log(s: Session) -> dict[str, list[int]]:
    """Ann: shipped arm, 3 papers, clicks on positions 0 and 2; Bob: the holdout, 2 papers,
    no click; Cy: shipped arm with its config's keys stored in the other order, 1 paper."""
    users = [UserRow(email=f"{n}@example.org", created_at=NOW) for n in ("ann", "bob", "cy")]
    papers = [PaperRow(title_key=f"p{i}", title=f"P{i}", url="u", created_at=NOW,
                       updated_at=NOW) for i in range(5)]  # fmt: skip
    s.add_all([*users, *papers])
    s.flush()
    p = sorted(x.id for x in papers)
    pool = CandidatePoolRow(paper_ids=p, created_at=SENT - timedelta(hours=1))
    s.add(pool)
    s.flush()
    mask = pack_mask(np.array([True, True, True, True, False]))  # the last paper: not in it
    shown = {"ann": [p[2], p[0], p[3]], "bob": [p[1], p[3]], "cy": [p[0]]}
    arms = {"ann": (None, {"explore_slots": 1, "min_score": 0.5}),
            "bob": ("holdout", {"uniform": True}),
            "cy": (None, {"explore_slots": 1, "min_score": 0.5})}  # fmt: skip
    ids = {}
    for user, name in zip(users, ("ann", "bob", "cy"), strict=True):
        variant, config = arms[name]
        digest = DigestRow(user_id=user.id, period="p", status="sent", created_at=SENT,
                           updated_at=SENT, sent_at=SENT, variant=variant, ranker_config=config,
                           candidate_pool_id=pool.id, candidate_mask=mask)  # fmt: skip
        s.add(digest)
        s.flush()
        ids[name] = [digest.id]
        for position in reversed(range(len(shown[name]))):  # stored out of order
            s.add(DigestItemRow(digest_id=digest.id, paper_id=shown[name][position],
                                position=position, score=1.0, propensity=0.5 + position / 10,
                                explored=position == 2))  # fmt: skip
    for paper in (shown["ann"][0], shown["ann"][2]):
        s.add(EventRow(user_id=users[0].id, paper_id=paper, kind="click",
                       digest_id=ids["ann"][0], created_at=SENT + timedelta(hours=1)))  # fmt: skip
    s.flush()
    s.execute(
        text("UPDATE digests SET ranker_config = :config WHERE id = :id"),
        {"config": '{"min_score":0.5,"explore_slots":1}', "id": ids["cy"][0]},
    )
    return {"papers": p, **ids}


@pytest.fixture()
def log(db: Database) -> dict[str, list[int]]:
    with db.session() as s:
        return _log(s)


def test_arms_count_one_config_however_its_json_was_written_in_first_digest_order(
    db: Database, log: dict[str, list[int]]
) -> None:
    with db.session() as s:
        arms = logged_arms(s, now=NOW, window=WEEK)

    shipped = 'default {"explore_slots": 1, "min_score": 0.5}'
    assert list(arms) == [shipped, 'holdout {"uniform": true}']
    assert arms[shipped] == ({"explore_slots": 1, "min_score": 0.5}, 2)
    assert arms['holdout {"uniform": true}'][1] == 1


def test_each_digest_gets_its_own_items_in_position_order_and_its_own_clicks(
    db: Database, log: dict[str, list[int]]
) -> None:
    p = log["papers"]
    with db.session() as s:
        chunks = list(stream_logged_digests(s, now=NOW, window=WEEK, chunk_size=2))
    digests = {d.digest_id: d for chunk in chunks for d in chunk}

    assert [len(c) for c in chunks] == [2, 1]
    ann, bob, cy = (digests[log[n][0]] for n in ("ann", "bob", "cy"))
    np.testing.assert_array_equal(ann.pool, p[:4])
    np.testing.assert_array_equal(ann.shown, [p[2], p[0], p[3]])
    np.testing.assert_allclose(ann.propensity, [0.5, 0.6, 0.7])
    np.testing.assert_array_equal(ann.explored, [False, False, True])
    np.testing.assert_array_equal(ann.clicked, [True, False, True])
    np.testing.assert_array_equal(bob.shown, [p[1], p[3]])
    np.testing.assert_array_equal(bob.clicked, [False, False])
    np.testing.assert_array_equal(cy.shown, [p[0]])
    assert cy.arm == ann.arm  # the same config, whatever order its keys were stored in
