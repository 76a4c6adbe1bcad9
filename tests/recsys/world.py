"""A small stored world with known answers, shared by the pipeline tests.

Two topics with disjoint vocabularies; Ada read two vision papers, Ben two audio papers,
Cy has no history and no interests (cold). Every new paper arrives at ``NOW``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.digests.scoring import rank_digests
from recsys.domain import Paper
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.subscribers.events import record_event
from recsys.training.model import load_active_model
from recsys.training.nightly import train
from tests.conftest import NOW

VISION = [
    "image segmentation with convolutional networks",
    "object detection in images",
    "semantic segmentation of street images",
    "vision transformers for image classification",
    "self-supervised image representation",
    "image denoising with convolutional priors",
]
AUDIO = [
    "speech recognition with acoustic models",
    "speaker diarization for meetings",
    "audio source separation of music",
    "acoustic echo cancellation in speech",
    "end-to-end speech synthesis",
    "music transcription from audio",
]


def paper(title: str, topic: str) -> Paper:
    words = "image pixels convolutional vision" if topic == "vision" else "audio speech acoustic"
    slug = title.replace(" ", "-")
    return Paper(title=title, abstract=f"{title}. We study {words}.", url=f"https://x.org/{slug}")


def load(session: Session) -> dict[str, int]:
    """Store the world; return ids by name: users ada/ben/cy, papers by title."""
    old = [paper(t, "vision") for t in VISION[:2]] + [paper(t, "audio") for t in AUDIO[:2]]
    new = [paper(t, "vision") for t in VISION[2:]] + [paper(t, "audio") for t in AUDIO[2:]]
    upsert_papers(session, old, NOW - timedelta(days=30))
    upsert_papers(session, new, NOW)
    ids = ids_by_title(session, VISION + AUDIO)
    ada = create_user(session, "ada@example.org", NOW, name="Ada").id
    ben = create_user(session, "ben@example.org", NOW, interests=[Interest("keyword", "speech")]).id
    cy = create_user(session, "cy@example.org", NOW).id
    for title in VISION[:2]:
        record_event(session, ada, ids[title], "click", NOW - timedelta(days=2))
    for title in AUDIO[:2]:
        record_event(session, ben, ids[title], "click", NOW - timedelta(days=2))
    return {"ada": ada, "ben": ben, "cy": cy, **ids}


def ranked_digests(db: Database, settings: Settings) -> list[int]:
    """Store the world, train on it, and rank Ada's, Ben's and Cy's digests; their ids."""
    with db.session() as s:
        load(s)
        train(s, settings, NOW)
    with db.session() as s:
        model = load_active_model(s, settings.models_dir, settings.data_dir)
    assert model is not None
    with db.session() as s:
        return rank_digests(s, plan_due(s, NOW), model, NOW, lookback=timedelta(days=7))
