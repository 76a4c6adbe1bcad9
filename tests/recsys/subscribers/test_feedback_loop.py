"""Known-answer test of the feedback loop on the synthetic world: one "less like this" or
"more like this" today changes tomorrow's digest, without retraining.

Every paper of the world has a known main topic. Each scenario records feedback and ranks
the subscriber's next digest through the real planner and scorer inside one transaction that
is rolled back, so scenarios share one world and one trained model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.demo import load_world
from recsys.catalog.papers import ids_by_external_id
from recsys.db.models import Base, DigestItemRow, DigestRow
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.subscribers.events import record_event
from recsys.synth import World, generate_world
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW

LOOKBACK = timedelta(days=7)
# Two topics the newcomer asks for, and a third they never mention.
TOPIC_A, TOPIC_B, TOPIC_C = 3, 6, 9


@dataclass
class Loaded:
    db: Database
    model: Model
    world: World
    users: list[int]  # world user row -> user id
    topic_of: dict[int, int]  # paper id -> main topic
    newcomer: int  # signed up with keywords of topics A and B, no history


@pytest.fixture(scope="module")
def loaded(migrated_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    settings = Settings(
        environment="test", data_dir=tmp_path_factory.mktemp("feedback"), secret_key="s"
    )
    world = generate_world(20, 400, seed=7, now=NOW)
    _empty(migrated_db)
    with migrated_db.session() as s:
        users = load_world(s, world, NOW)
        paper_ids = ids_by_external_id(s, [p.external_id or "" for p in world.papers])
        words = [*world.topics[TOPIC_A].words[:3], *world.topics[TOPIC_B].words[:3]]
        newcomer = create_user(
            s, "newcomer@example.org", NOW, interests=[Interest("keyword", w) for w in words]
        ).id
        train(s, settings, NOW)
    with migrated_db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    topic_of = {pid: int(world.paper_topics[i]) for i, pid in enumerate(paper_ids)}
    yield Loaded(migrated_db, model, world, users, topic_of, newcomer)
    _empty(migrated_db)


def _empty(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture()
def session(loaded: Loaded) -> Iterator[Session]:
    """A session whose every change (feedback, digests) is rolled back after the test."""
    session = loaded.db.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def next_digest(session: Session, loaded: Loaded, user_id: int) -> list[int]:
    """Plan and rank the user's next digest as the workers would; its paper ids, best first."""
    planned = plan_due(session, NOW)
    digest_id = session.scalar(
        select(DigestRow.id).where(DigestRow.id.in_(planned), DigestRow.user_id == user_id)
    )
    assert digest_id is not None
    rank_digests(session, [digest_id], loaded.model, NOW, lookback=LOOKBACK)
    return list(
        session.scalars(
            select(DigestItemRow.paper_id)
            .where(DigestItemRow.digest_id == digest_id)
            .order_by(DigestItemRow.position)
        )
    )


def topics(loaded: Loaded, paper_ids: list[int]) -> Counter[int]:
    return Counter(loaded.topic_of[p] for p in paper_ids)


def first_of_topic(loaded: Loaded, topic: int, among: list[int] | None = None) -> int:
    return next(p for p in (among or sorted(loaded.topic_of)) if loaded.topic_of[p] == topic)


def baseline(loaded: Loaded, user_id: int) -> list[int]:
    """The digest the user gets without new feedback (ranked in a rolled-back session)."""
    session = loaded.db.sessions()
    try:
        return next_digest(session, loaded, user_id)
    finally:
        session.rollback()
        session.close()


def test_a_newcomer_with_only_interests_gets_papers_of_those_topics(loaded: Loaded) -> None:
    first = topics(loaded, baseline(loaded, loaded.newcomer))

    assert sum(first.values()) == 10
    assert set(first) == {TOPIC_A, TOPIC_B}


def test_less_like_this_on_a_topic_t_paper_gives_fewer_topic_t_papers(
    loaded: Loaded, session: Session
) -> None:
    before = baseline(loaded, loaded.newcomer)
    disliked = first_of_topic(loaded, TOPIC_A, among=before)

    record_event(session, loaded.newcomer, disliked, "less", NOW - timedelta(minutes=5))
    after = next_digest(session, loaded, loaded.newcomer)

    assert topics(loaded, after)[TOPIC_A] < topics(loaded, before)[TOPIC_A]
    assert topics(loaded, after)[TOPIC_B] >= topics(loaded, before)[TOPIC_B]


def test_more_like_this_on_a_topic_t_paper_gives_more_topic_t_papers(
    loaded: Loaded, session: Session
) -> None:
    before = baseline(loaded, loaded.newcomer)
    liked = first_of_topic(loaded, TOPIC_C)

    record_event(session, loaded.newcomer, liked, "more", NOW - timedelta(minutes=5))
    after = next_digest(session, loaded, loaded.newcomer)

    assert topics(loaded, before)[TOPIC_C] == 0
    assert topics(loaded, after)[TOPIC_C] > 0


def test_a_link_scanners_clicks_change_nothing(loaded: Loaded, session: Session) -> None:
    before = baseline(loaded, loaded.newcomer)
    others = [p for p in sorted(loaded.topic_of) if p not in before]
    # The same feedback from the reader changes the digest (the tests above); a scanner's not.
    scanned = [first_of_topic(loaded, TOPIC_C, others), first_of_topic(loaded, TOPIC_B, others)]
    for paper, kind in zip(scanned, ("more", "less"), strict=True):
        record_event(session, loaded.newcomer, paper, kind, NOW, suspect=True)

    assert next_digest(session, loaded, loaded.newcomer) == before
