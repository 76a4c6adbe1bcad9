"""Sample digest data for the delivery tests: Ada's three-paper digest and its links."""

from __future__ import annotations

from datetime import UTC, date, datetime

from recsys.delivery.compose import DigestEmail, DigestLine

FROM = "Paperboy <digest@paperboy.example>"
SENT_AT = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
BASE = "https://paperboy.example"
ABSTRACT = (
    "Sequence models have long relied on recurrence. However, recurrence limits parallelism "
    "in training. We propose a new architecture, based solely on attention, that dispenses "
    "with recurrence entirely. Experiments on two translation tasks show it achieves better "
    "quality while training much faster. It also generalises to parsing."
)


def line(paper_id: int, title: str, authors: tuple[str, ...] = ("Ada Lovelace",)) -> DigestLine:
    """A digest line whose links all carry the paper id, so tests can find them."""
    return DigestLine(
        paper_id=paper_id,
        title=title,
        authors=authors,
        reason=f"Close to papers you saved about topic {paper_id}",
        click_url=f"{BASE}/c/{paper_id}?t=tok{paper_id}&d=42",
        more_url=f"{BASE}/f/{paper_id}/more?t=tok{paper_id}",
        less_url=f"{BASE}/f/{paper_id}/less?t=tok{paper_id}",
        abstract=ABSTRACT,
        categories=("cs.LG", "cs.CL"),
        published=date(2026, 11, 20),
        arxiv_id=f"2611.{paper_id:05d}",
        pdf_url=f"https://arxiv.org/pdf/2611.{paper_id:05d}",
    )


def ada_digest() -> DigestEmail:
    """Digest 42 for Ada: three papers of 27 candidates, one with five authors, all links."""
    return DigestEmail(
        digest_id=42,
        to_email="ada@example.org",
        to_name="Ada Lovelace",
        subject="Your papers for Saturday 21 November 2026",
        period_label="Saturday 21 November 2026",
        items=(
            line(1, "Attention Is All You Need"),
            line(2, "Deep Residual Learning", ("Kaiming He", "Xiangyu Zhang", "Shaoqing Ren")),
            line(
                3,
                "Language Models are Few-Shot Learners",
                ("Tom Brown", "Ben Mann", "Nick Ryder", "Melanie Subbiah", "Jared Kaplan"),
            ),
        ),
        unsubscribe_url=f"{BASE}/u/42?sig=abc",
        preferences_url=f"{BASE}/prefs?sig=abc",
        candidates=27,
    )
