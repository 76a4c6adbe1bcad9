"""insert_rows: every row lands with its values, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.bulk import (
    analyze_if_unseen,
    insert_returning_ids,
    insert_rows,
    is_postgresql,
    update_rows,
)
from recsys.db.models import DigestItemRow, DigestRow, PaperRow
from recsys.db.session import Database
from recsys.subscribers.accounts import create_user
from tests.conftest import NOW
from tests.recsys import world

TITLES = ["bulk one", "bulk two", "bulk three"]


def test_it_inserts_every_row_with_its_values(db: Database) -> None:
    with db.session() as s:
        user = create_user(s, "bulk@example.org", NOW)
        upsert_papers(s, [world.paper(t, "vision") for t in TITLES], NOW)
        papers = ids_by_title(s, TITLES)
        digest = DigestRow(
            user_id=user.id, period="2026-11-21", status="ranked", created_at=NOW, updated_at=NOW
        )
        s.add(digest)
        s.flush()
        digest_id = digest.id
    rows = [
        {"digest_id": digest_id, "paper_id": papers[title], "position": i, "score": i / 4,
         "reason": f"reason {i} ’quoted’", "propensity": 1 / (i + 1), "explored": i % 2 == 1}
        for i, title in enumerate(TITLES)
    ]  # fmt: skip
    with db.session() as s:
        insert_rows(s, DigestItemRow.__table__, rows)
    with db.session() as s:
        stored = s.execute(
            select(
                DigestItemRow.paper_id, DigestItemRow.score, DigestItemRow.reason,
                DigestItemRow.propensity, DigestItemRow.explored,
            ).order_by(DigestItemRow.position)
        ).all()  # fmt: skip
    assert [tuple(r) for r in stored] == [
        (papers["bulk one"], 0.0, "reason 0 ’quoted’", 1.0, False),
        (papers["bulk two"], 0.25, "reason 1 ’quoted’", 0.5, True),
        (papers["bulk three"], 0.5, "reason 2 ’quoted’", 1 / 3, False),
    ]


def test_no_rows_is_no_statement(db: Database) -> None:
    with db.session() as s:
        insert_rows(s, DigestItemRow.__table__, [])
        assert s.scalar(select(DigestItemRow.id)) is None


def test_update_rows_sets_each_rows_own_values_including_json_and_bytes(db: Database) -> None:
    with db.session() as s:
        user = create_user(s, "update@example.org", NOW)
        digests = [
            DigestRow(user_id=user.id, period=p, status="ranked", created_at=NOW, updated_at=NOW)
            for p in ("a", "b")
        ]
        s.add_all(digests)
        s.flush()
        ids = [d.id for d in digests]
    config = {"explore_slots": 2}
    rows = [
        {"id": ids[0], "variant": "x", "ranker_config": config, "candidate_mask": b"\x01"},
        {"id": ids[1], "variant": None, "ranker_config": {}, "candidate_mask": b"\xff\x00"},
    ]
    with db.session() as s:
        update_rows(s, DigestRow, rows)
    with db.session() as s:
        stored = s.execute(
            select(DigestRow.variant, DigestRow.ranker_config, DigestRow.candidate_mask)
            .order_by(DigestRow.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in stored] == [
        ("x", {"explore_slots": 2}, b"\x01"),
        (None, {}, b"\xff\x00"),
    ]


def test_a_table_the_planner_has_not_seen_is_analyzed_once(db: Database) -> None:
    # The upsert analyzes a table whose planner statistics know fewer rows than it just
    # inserted (a fresh table: the planner scanned it for every look-up); a later batch no
    # larger than what the statistics know does not analyze again.
    with db.session() as s:
        upsert_papers(s, [world.paper(t, "vision") for t in TITLES], NOW)
    with db.session() as s:
        again = analyze_if_unseen(s, PaperRow.__table__, inserted=len(TITLES))
        larger = analyze_if_unseen(s, PaperRow.__table__, inserted=len(TITLES) + 1)
        if not is_postgresql(s):
            assert (again, larger) == (False, False)  # SQLite has nothing to analyze for
            return
        seen = s.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'papers'"))
    assert (seen, again, larger) == (len(TITLES), False, True)


def test_inserted_ids_come_back_in_the_order_of_the_rows(db: Database) -> None:
    # The ids are drawn before the insert on PostgreSQL: each must name the row it was
    # drawn for, whatever order the database writes them in. ``abstract`` is left out: it
    # gets its default on both backends.
    rows = [
        {"title": f"paper {n}", "title_key": f"paper{n}", "url": f"https://example.org/{n}",
         "authors": [f"Author {n}", "Ada"], "categories": [], "published": NOW + timedelta(days=n),
         "created_at": NOW, "updated_at": NOW}
        for n in (3, 1, 2)
    ]  # fmt: skip
    with db.session() as s:
        s.add(PaperRow(title="already", title_key="already", url="u", created_at=NOW,
                       updated_at=NOW))  # fmt: skip
        s.flush()
        ids = insert_returning_ids(s, PaperRow.__table__, rows)
    with db.session() as s:
        stored = {
            row.id: (row.title, row.authors, row.published, row.abstract)
            for row in s.scalars(select(PaperRow).where(PaperRow.id.in_(ids)))
        }
    assert len(set(ids)) == 3
    assert [stored[i] for i in ids] == [
        (f"paper {n}", [f"Author {n}", "Ada"], NOW + timedelta(days=n), "") for n in (3, 1, 2)
    ]


def test_a_duplicate_key_fails_as_an_integrity_error_on_every_backend(db: Database) -> None:
    # The harvest stores a page again when two sources inserted one paper at once; it
    # knows that case by SQLAlchemy's IntegrityError, which COPY must raise too.
    row = {"arxiv_id": "2611.00001", "title": "t", "title_key": "t", "url": "u",
           "authors": [], "categories": [], "created_at": NOW, "updated_at": NOW}  # fmt: skip
    with db.session() as s:
        insert_returning_ids(s, PaperRow.__table__, [row])
    with pytest.raises(IntegrityError), db.session() as s:
        insert_returning_ids(s, PaperRow.__table__, [{**row, "title": "again"}])
    with db.session() as s:
        assert s.scalars(select(PaperRow.title)).all() == ["t"]
