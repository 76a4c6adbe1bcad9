"""``record_click``: the lean click path behind every digest link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, event, select

from recsys.db.models import DigestRow, EventRow, PaperRow
from recsys.db.session import Database
from recsys.subscribers.accounts import SubscriberError, create_user
from recsys.subscribers.events import Click, record_click, store_reader_click
from tests.conftest import NOW

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
WINDOW_S = 10.0


@pytest.fixture()
def conn(db: Database) -> Iterator[Connection]:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def _paper(db: Database, url: str = "https://arxiv.org/abs/1706.03762") -> int:
    with db.session() as s:
        row = PaperRow(
            title="Attention Is All You Need", title_key="attention", abstract="",
            authors=[], categories=[], url=url, source="test", created_at=NOW, updated_at=NOW,
        )  # fmt: skip
        s.add(row)
        s.flush()
        return row.id


def _user_with_digest(db: Database, email: str, sent_ago: timedelta) -> tuple[int, int]:
    with db.session() as s:
        uid = create_user(s, email, NOW).id
        digest = DigestRow(
            user_id=uid, period="2026-11-21", status="sent", created_at=NOW - sent_ago,
            updated_at=NOW, sent_at=NOW - sent_ago,
        )  # fmt: skip
        s.add(digest)
        s.flush()
        return uid, digest.id


def _events(db: Database) -> list[tuple[int, int, str, int | None, bool, str | None]]:
    with db.session() as s:
        rows = s.scalars(select(EventRow).order_by(EventRow.id)).all()
        return [(e.user_id, e.paper_id, e.kind, e.digest_id, e.suspect, e.user_agent) for e in rows]


def test_a_readers_click_is_stored_and_leads_to_the_paper(db: Database, conn: Connection) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    click = record_click(
        conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=WINDOW_S
    )

    assert click == Click(url="https://arxiv.org/abs/1706.03762", suspect=False)
    assert _events(db) == [(ada, paper, "click", digest, False, FIREFOX)]


def test_a_click_seconds_after_sending_or_by_head_is_flagged(
    db: Database, conn: Connection
) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(seconds=2))

    fresh = record_click(conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10)
    later = NOW + timedelta(hours=1)
    head = record_click(
        conn, ada, paper, digest, later, method="HEAD", user_agent=FIREFOX, scanner_window_s=10
    )
    no_agent = record_click(conn, ada, paper, digest, later, scanner_window_s=10)

    assert (fresh.suspect, head.suspect, no_agent.suspect) == (True, True, True)
    assert [e[4] for e in _events(db)] == [True, True, True]


def test_a_digest_that_is_gone_or_someone_elses_is_not_linked(
    db: Database, conn: Connection
) -> None:
    paper = _paper(db)
    ada, _ = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    _, bobs_digest = _user_with_digest(db, "bob@example.org", timedelta(hours=2))

    record_click(conn, ada, paper, bobs_digest, NOW, user_agent=FIREFOX, scanner_window_s=10)
    record_click(conn, ada, paper, 999_999, NOW, user_agent=FIREFOX, scanner_window_s=10)
    record_click(conn, ada, paper, None, NOW, user_agent=FIREFOX, scanner_window_s=10)

    # Without a digest there is no send time: the click is kept and counts as the reader's.
    assert [(e[3], e[4]) for e in _events(db)] == [(None, False)] * 3


@pytest.mark.parametrize(
    ("gone", "field"), [("paper", "paper_id"), ("user", "user_id"), ("url", "url")]
)
def test_nothing_is_stored_when_the_link_leads_nowhere(
    db: Database, conn: Connection, gone: str, field: str
) -> None:
    paper = _paper(db, url="javascript:alert(1)" if gone == "url" else "https://x.org/p")
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    user_id = 999_999 if gone == "user" else ada
    paper_id = 999_999 if gone == "paper" else paper

    with pytest.raises(SubscriberError) as raised:
        record_click(conn, user_id, paper_id, digest, NOW, scanner_window_s=10)

    assert raised.value.field == field
    assert _events(db) == []


def test_a_long_user_agent_is_cut_to_512_characters(db: Database, conn: Connection) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    record_click(conn, ada, paper, digest, NOW, user_agent=FIREFOX * 20, scanner_window_s=10)

    [event] = _events(db)
    assert event[5] == (FIREFOX * 20)[:512]


@pytest.mark.parametrize(("sent_ago", "suspect"), [(WINDOW_S, False), (WINDOW_S - 1e-6, True)])
def test_the_scanner_window_ends_where_suspect_reason_says(
    db: Database, conn: Connection, sent_ago: float, suspect: bool
) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(seconds=sent_ago))

    click = record_click(conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10)

    assert click.suspect is suspect
    assert [e[4] for e in _events(db)] == [suspect]


def test_a_readers_click_is_one_statement(db: Database, conn: Connection) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(conn, "before_cursor_execute", count)
    record_click(conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10)

    assert len(statements) == 1 and statements[0].startswith("INSERT")
    assert len(_events(db)) == 1


def test_on_the_event_loop_a_readers_click_is_stored_and_any_other_left_alone(
    db: Database,
) -> None:
    if db.loop_writes is None:
        pytest.skip("the event-loop path is PostgreSQL's")
    writes = db.loop_writes
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    bob, fresh = _user_with_digest(db, "bob@example.org", timedelta(seconds=2))

    async def clicks() -> list[Click | None]:
        try:
            return [
                await store_reader_click(writes, *ids, NOW, user_agent=FIREFOX, scanner_window_s=10)
                for ids in [(ada, paper, digest), (bob, paper, fresh), (999_999, paper, None)]
            ]
        finally:
            await writes.close()

    reader, scanned, nobody = asyncio.run(clicks())

    assert reader == Click(url="https://arxiv.org/abs/1706.03762", suspect=False)
    assert (scanned, nobody) == (None, None)  # for record_click to check and store or refuse
    assert _events(db) == [(ada, paper, "click", digest, False, FIREFOX)]
