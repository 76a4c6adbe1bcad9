from datetime import timedelta

from sqlalchemy import select

from recsys.db.models import DigestItemRow, DigestRow
from recsys.db.session import Database
from recsys.digests import claim, plan_due
from recsys.model import Model
from recsys.scoring import SKIP_REASON, rank_digests
from recsys.subscribers import record_event
from tests.conftest import NOW
from tests.recsys import world

LOOKBACK = timedelta(days=7)


def _rank(db: Database, model: Model, **kwargs: object) -> dict[int, list[int]]:
    """Plan and rank everyone; return each user's ranked paper ids."""
    with db.session() as s:
        digest_ids = plan_due(s, NOW)
        rank_digests(s, digest_ids, model, NOW, lookback=LOOKBACK, **kwargs)  # type: ignore[arg-type]
    with db.session() as s:
        rows = s.execute(
            select(DigestRow.user_id, DigestItemRow.paper_id)
            .join(DigestItemRow, DigestItemRow.digest_id == DigestRow.id)
            .order_by(DigestRow.user_id, DigestItemRow.position)
        ).all()
    ranked: dict[int, list[int]] = {}
    for user_id, paper_id in rows:
        ranked.setdefault(user_id, []).append(paper_id)
    return ranked


def test_users_get_the_new_papers_of_their_topic_first(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    ranked = _rank(db, model)
    new_vision = {ids[t] for t in world.VISION[2:]}
    new_audio = {ids[t] for t in world.AUDIO[2:]}
    assert set(ranked[ids["ada"]][:4]) == new_vision
    assert set(ranked[ids["ben"]][:4]) == new_audio


def test_old_and_already_read_papers_are_never_candidates(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    ranked = _rank(db, model)
    old = {ids[t] for t in world.VISION[:2] + world.AUDIO[:2]}
    assert all(not (set(papers) & old) for papers in ranked.values())


def test_a_cold_user_still_gets_the_newest_papers(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    ranked = _rank(db, model)
    assert len(ranked[ids["cy"]]) == 8  # every new paper scores 0 and clears the bar


def test_a_digest_with_nothing_above_the_bar_is_skipped_with_the_reason(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    _rank(db, model, min_score=2.0)  # cosine scores never exceed 1
    with db.session() as s:
        digests = s.scalars(select(DigestRow)).all()
        assert {(d.status, d.reason) for d in digests} == {("skipped", SKIP_REASON)}


def test_todays_less_like_this_changes_the_next_ranking_without_retraining(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        for title in world.VISION[:2]:
            record_event(s, ids["ada"], ids[title], "less", NOW - timedelta(hours=1))
        record_event(s, ids["ada"], ids[world.AUDIO[0]], "more", NOW - timedelta(hours=1))
    ranked = _rank(db, model)
    assert set(ranked[ids["ada"]][:4]) == {ids[t] for t in world.AUDIO[2:]}


def test_ranking_an_already_ranked_digest_does_nothing(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        digest_ids = plan_due(s, NOW)
        assert claim(s, digest_ids[0], "planned", "ranked", NOW)
        ranked = rank_digests(s, digest_ids, model, NOW, lookback=LOOKBACK)
    assert digest_ids[0] not in ranked
    with db.session() as s:
        items = s.scalars(select(DigestItemRow).where(DigestItemRow.digest_id == digest_ids[0]))
        assert items.all() == []
