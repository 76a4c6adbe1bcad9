"""The reason audit: citations checked with an independent TF-IDF, on hand-made digests."""

from __future__ import annotations

from experiments.reasons import audit_reasons
from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.models import DigestItemRow, DigestRow
from recsys.db.session import Database
from recsys.domain import Paper
from recsys.subscribers.accounts import create_user
from tests.conftest import NOW

TITLES = {
    "speech": "Speech recognition with acoustic models",
    "speech2": "Acoustic models for noisy speech recognition",
    "vision": "Object detection in street images",
    "music": "Music transcription of piano recordings",
}


def _world(db: Database, reasons: dict[str, str]) -> None:
    with db.session() as s:
        upsert_papers(
            s,
            [Paper(title=t, abstract=f"{t}.", url="https://x.org/p") for t in TITLES.values()],
            NOW,
        )
        ids = ids_by_title(s, list(TITLES.values()))
        user = create_user(s, "ada@example.org", NOW)
        digest = DigestRow(
            user_id=user.id, period="2026-11-21", status="sent", created_at=NOW, updated_at=NOW
        )
        s.add(digest)
        s.flush()
        for position, (item, reason) in enumerate(reasons.items()):
            s.add(
                DigestItemRow(
                    digest_id=digest.id,
                    paper_id=ids[TITLES[item]],
                    position=position,
                    score=1.0,
                    reason=reason,
                )
            )


def test_close_and_far_citations_are_told_apart(db: Database) -> None:
    _world(
        db,
        {
            "speech2": f"Similar to “{TITLES['speech']}” you read",  # shares four terms: close
            "vision": f"Similar to “{TITLES['music']}” you read",  # shares none: far
            "speech": "Matches your interest “speech recognition”",  # close
            "music": "Like the most-read papers in your topics",  # cites nothing
        },
    )
    with db.session() as s:
        audit = audit_reasons(s)

    assert (audit.items, audit.citing, audit.close) == (4, 3, 2)
    assert audit.close_share == 2 / 3
    assert audit.by_reason == {
        "paper": 2,
        "interest": 1,
        "Like the most-read papers in your topics": 1,
    }
    assert [e["item"] for e in audit.far_examples] == [TITLES["vision"]]
