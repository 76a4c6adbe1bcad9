from datetime import timedelta

from sqlalchemy import func, select

from recsys.db.models import DigestItemRow, DigestRow
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.preview import NO_MODEL, last_sent_digest, preview_digest
from recsys.digests.scoring import SKIP_REASON, rank_digests
from recsys.online.assignment import RankerConfig, Variant
from recsys.online.experiments import create_experiment
from recsys.subscribers.accounts import Interest, Preferences, update_preferences
from recsys.training.model import Model
from tests.conftest import NOW
from tests.recsys import world

LOOKBACK = timedelta(days=7)


def test_the_preview_is_the_digest_the_scorer_will_send(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        preview = preview_digest(s, model, ids["ben"], NOW, lookback=LOOKBACK)
        rank_digests(s, plan_due(s, NOW), model, NOW, lookback=LOOKBACK)
    with db.session() as s:
        sent = s.execute(
            select(DigestItemRow.paper_id, DigestItemRow.reason)
            .join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
            .where(DigestRow.user_id == ids["ben"])
            .order_by(DigestItemRow.position)
        ).all()

    assert [(i.paper_id, i.reason) for i in preview.items] == [tuple(r) for r in sent]
    assert {i.paper_id for i in preview.items[:4]} == {ids[t] for t in world.AUDIO[2:]}
    assert preview.items[0].url.startswith("https://x.org/")


def test_previewing_writes_nothing(db: Database, ids: dict[str, int], model: Model) -> None:
    with db.session() as s:
        preview_digest(s, model, ids["ada"], NOW, lookback=LOOKBACK)
        assert not (s.new or s.dirty or s.deleted)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DigestRow)) == 0


def test_the_preview_follows_an_interest_edit_at_once(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        prefs = Preferences(interests=[Interest("keyword", "image segmentation vision")])
        update_preferences(s, ids["cy"], prefs, NOW)
        preview = preview_digest(s, model, ids["cy"], NOW, lookback=LOOKBACK)

    assert {i.paper_id for i in preview.items[:4]} == {ids[t] for t in world.VISION[2:]}
    assert preview.items[0].reason.startswith("Matches your interest")


def test_without_a_model_or_above_the_bar_the_preview_says_why(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        assert preview_digest(s, None, ids["ada"], NOW, lookback=LOOKBACK).note == NO_MODEL
        high = preview_digest(s, model, ids["ada"], NOW, lookback=LOOKBACK, min_score=1.01)
    assert (high.items, high.note) == ((), SKIP_REASON)


def test_the_last_sent_digest_keeps_its_reasons(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        assert last_sent_digest(s, ids["ada"]) is None
        rank_digests(s, plan_due(s, NOW), model, NOW, lookback=LOOKBACK)
        s.execute(DigestRow.__table__.update().values(status="sent", sent_at=NOW))
    with db.session() as s:
        last = last_sent_digest(s, ids["ada"])
    assert last is not None
    assert last.period == "2026-11-21"
    # Ada has 10 slots and 8 candidates; the 4 audio ones are below her bar.
    assert len(last.items) == 4
    assert all(item.reason for item in last.items)


def test_an_exploring_arm_previews_the_ranked_list_its_slots_are_drawn_from(
    db: Database, ids: dict[str, int], model: Model
) -> None:
    with db.session() as s:
        before = preview_digest(s, model, ids["ben"], NOW, lookback=LOOKBACK)
        explore = Variant("explore", 1.0, RankerConfig(explore_slots=3))
        create_experiment(s, "explore3", [explore], NOW)
        during = preview_digest(s, model, ids["ben"], NOW, lookback=LOOKBACK)
    assert during == before
