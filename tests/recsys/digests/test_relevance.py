"""Known answers for the relevance bar and feedback in proportion (issue 14, items 2 and 4).

A hand-made catalogue of six topics with disjoint vocabularies. The old papers (a month
ago) train the embedder; today's papers are the candidates: speech (one on speaker
verification), graph neural networks, protein design (many more than GNN, the imbalance of
the issue), vision and economics, and no helium at all (the thin day of the issue).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.models import DigestItemRow, DigestRow, UserRow
from recsys.db.session import Database
from recsys.delivery import compose, html_part, text_part
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import SKIP_REASON, rank_digests, rank_users
from recsys.digests.sending import build_email
from recsys.domain import Paper
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.subscribers.events import record_event
from recsys.training.model import Model, load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW

LOOKBACK = timedelta(days=7)
WORDS = {
    "speech": "speech acoustic spoken utterance phoneme recognition audio",
    # Many more words than the reader's "graph neural networks": the GNN papers match that
    # interest less closely than protein papers match "protein design".
    "gnn": "graph neural networks message passing node edge spectral laplacian adjacency "
    "pooling readout",
    "protein": "protein design protein design folding enzyme",
    "helium": "helium superfluid vortex cryogenic film quantum liquid",
    "vision": "image pixel segmentation convolutional detection camera",
    "economics": "market price auction trade economics demand",
}
SPEAKER_VERIFICATION = "Speaker verification with voice embeddings"
# Today's candidates per topic: protein outnumbers GNN, helium is absent.
NEW = {"speech": 9, "gnn": 6, "protein": 15, "vision": 6, "economics": 5}


def _paper(topic: str, n: int, title: str | None = None) -> Paper:
    words = WORDS[topic].split()
    rng = np.random.default_rng([n, len(topic)])
    picked = " ".join(rng.choice(words, size=12).tolist())
    first = 3 if topic == "gnn" else 0  # GNN titles say "message passing", not the interest
    title = title or f"{topic} study {n}: {' '.join(words[first + n % 4 : first + n % 4 + 3])}"
    slug = title.replace(" ", "-").replace(":", "")
    return Paper(title=title, abstract=f"{title}. {picked}.", url=f"https://x.org/{slug}")


def _old(topic: str) -> list[Paper]:
    return [_paper(topic, n) for n in range(100, 112)]


def _new(topic: str, count: int) -> list[Paper]:
    return [_paper(topic, n) for n in range(count)]


def _sv_paper() -> Paper:
    # Written mostly in the speech vocabulary: similar enough to the disliked speech papers
    # that their penalty reaches it, which only the explicit interest's floor can hold off.
    speech = " ".join(WORDS["speech"].split() * 2)
    abstract = f"{SPEAKER_VERIFICATION}. Speaker verification from voice: {speech}."
    return Paper(title=SPEAKER_VERIFICATION, abstract=abstract, url="https://x.org/sv")


@pytest.fixture()
def catalogue(db: Database) -> dict[str, int]:
    """Store the papers; ids by title."""
    with db.session() as s:
        upsert_papers(s, [p for t in WORDS for p in _old(t)], NOW - timedelta(days=30))
        new = [p for topic, count in NEW.items() for p in _new(topic, count)] + [_sv_paper()]
        upsert_papers(s, new, NOW)
        return ids_by_title(s, [p.title for p in new] + [p.title for t in WORDS for p in _old(t)])


def _trained(db: Database, settings: Settings) -> Model:
    with db.session() as s:
        train(s, settings, NOW)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    return model


def _user(db: Database, email: str, *keywords: str, strictness: str = "normal") -> int:
    with db.session() as s:
        interests = [Interest("keyword", k) for k in keywords]
        user = create_user(s, email, NOW, interests=interests)
        user.strictness = strictness
        return user.id


def _topic_of(ids: dict[str, int]) -> dict[int, str]:
    out = {ids[SPEAKER_VERIFICATION]: "speech"}
    for topic in WORDS:
        for paper in _new(topic, NEW.get(topic, 0)) + _old(topic):
            out[ids[paper.title]] = topic
    return out


def _rank_all(db: Database, model: Model) -> dict[int, DigestRow]:
    with db.session() as s:
        rank_digests(s, plan_due(s, NOW), model, NOW, lookback=LOOKBACK)
    with db.session() as s:
        return {d.user_id: d for d in s.scalars(select(DigestRow))}


def _items(db: Database, digest_id: int) -> list[int]:
    with db.session() as s:
        query = select(DigestItemRow.paper_id).where(DigestItemRow.digest_id == digest_id)
        return list(s.scalars(query.order_by(DigestItemRow.position)))


def test_a_thin_day_with_nothing_on_topic_sends_nothing_and_says_why(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    helium = _user(db, "helium@example.org", "superfluid helium")
    model = _trained(db, settings)

    digest = _rank_all(db, model)[helium]

    assert (digest.status, digest.reason) == ("skipped", SKIP_REASON)
    assert _items(db, digest.id) == []


def test_a_thin_day_with_three_on_topic_sends_those_three_and_says_so(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    with db.session() as s:
        upsert_papers(s, _new("helium", 3), NOW)
        helium_ids = set(ids_by_title(s, [p.title for p in _new("helium", 3)]).values())
    helium = _user(db, "helium@example.org", "superfluid helium")
    model = _trained(db, settings)

    digest = _rank_all(db, model)[helium]

    assert digest.status == "ranked"
    assert set(_items(db, digest.id)) == helium_ids
    with db.session() as s:
        email = build_email(s, settings, digest.id, NOW)
    assert email is not None
    message = compose(email, settings.from_email, now=NOW)
    assert "Only 3 new papers cleared your bar today." in text_part(message)
    assert "Only 3 new papers cleared your bar today." in html_part(message)


def test_strictness_fewer_sends_a_subset_of_more(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    levels = ("fewer", "normal", "more")
    users = {
        level: _user(db, f"{level}@example.org", "graph neural networks", strictness=level)
        for level in levels
    }
    with db.session() as s:  # a reader too: the profile mixes what they read with the words
        paper = catalogue[_old("protein")[0].title]
        record_event(s, users["more"], paper, "click", NOW - timedelta(days=1))
        for level in ("fewer", "normal"):
            record_event(s, users[level], paper, "click", NOW - timedelta(days=1))
        for user_id in users.values():
            s.get(UserRow, user_id).digest_size = 30  # type: ignore[union-attr]
    model = _trained(db, settings)

    digests = _rank_all(db, model)
    sent = {level: set(_items(db, digests[users[level]].id)) for level in levels}

    assert sent["fewer"] <= sent["normal"] <= sent["more"]
    assert len(sent["fewer"]) < len(sent["more"])  # the levels do change something here


def test_ten_less_on_speech_keep_the_explicit_speaker_verification_paper(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    # The issue's reader: reads speech, asked for speaker verification, then said "less
    # like this" to ten speech papers.
    reader = _user(db, "voice@example.org", "speaker verification")
    with db.session() as s:
        for paper in _old("speech")[10:]:
            record_event(s, reader, catalogue[paper.title], "click", NOW - timedelta(days=3))
        for paper in _old("speech")[:10]:
            record_event(s, reader, catalogue[paper.title], "less", NOW - timedelta(hours=1))
    model = _trained(db, settings)

    sent = _items(db, _rank_all(db, model)[reader].id)

    assert sent and sent[0] == catalogue[SPEAKER_VERIFICATION]
    topic_of = _topic_of(catalogue)
    others = [p for p in sent if topic_of[p] == "speech" and p != sent[0]]
    assert len(others) < NEW["speech"]  # the other speech papers did sink


def test_one_less_lowers_similar_papers_but_not_dissimilar_ones(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    reader = _user(db, "mixed@example.org", "speech recognition", "market auction")
    with db.session() as s:
        s.get(UserRow, reader).digest_size = 50  # type: ignore[union-attr]
    model = _trained(db, settings)
    with db.session() as s:
        before = _all_scores(s, model, reader)
        record_event(s, reader, catalogue[_old("speech")[0].title], "less", NOW)
        after = _all_scores(s, model, reader)
        s.rollback()

    topic_of = _topic_of(catalogue)
    # Today's "speech study" papers share the disliked paper's vocabulary; the speaker
    # verification one shares two words of it, below what counts as similar.
    speech = [p for p in before if topic_of[p] == "speech" and p != catalogue[SPEAKER_VERIFICATION]]
    economics = [p for p in before if topic_of[p] == "economics"]
    assert len(speech) >= 5 and len(economics) == NEW["economics"]
    assert all(after[p] < before[p] - 0.01 for p in speech)
    assert all(after[p] == pytest.approx(before[p], abs=1e-6) for p in economics)


def _all_scores(session: Session, model: Model, user_id: int) -> dict[int, float]:
    """Every candidate's score for the user, the bar off (min_score -1.01)."""
    user = session.get(UserRow, user_id)
    assert user is not None
    since = {user_id: NOW - LOOKBACK}
    ranking = rank_users(session, model, [user], since, NOW, min_score=-1.01)
    digest = ranking.digests[0]
    ids = ranking.candidates.block.paper_ids[digest.slate.cols].tolist()
    return dict(zip(ids, digest.scores.tolist(), strict=True))


def test_two_interests_both_get_a_share_of_the_digest(
    db: Database, settings: Settings, catalogue: dict[str, int]
) -> None:
    reader = _user(db, "two@example.org", "graph neural networks", "protein design")
    model = _trained(db, settings)

    sent = _items(db, _rank_all(db, model)[reader].id)

    topics = Counter(_topic_of(catalogue)[p] for p in sent)
    assert len(sent) == 10
    assert topics["gnn"] >= 3 and topics["protein"] >= 3, topics
