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
from recsys.subscribers.events import Click, record_click, record_event, store_reader_click
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
        conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=WINDOW_S, burst_s=3
    )

    assert click == Click(url="https://arxiv.org/abs/1706.03762", suspect=False)
    assert _events(db) == [(ada, paper, "click", digest, False, FIREFOX)]


def test_a_click_seconds_after_sending_or_by_head_is_flagged(
    db: Database, conn: Connection
) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(seconds=2))

    fresh = record_click(
        conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3
    )
    later = NOW + timedelta(hours=1)
    head = record_click(
        conn,
        ada,
        paper,
        digest,
        later,
        method="HEAD",
        user_agent=FIREFOX,
        scanner_window_s=10,
        burst_s=3,
    )
    no_agent = record_click(conn, ada, paper, digest, later, scanner_window_s=10, burst_s=3)

    assert (fresh.suspect, head.suspect, no_agent.suspect) == (True, True, True)
    assert [e[4] for e in _events(db)] == [True, True, True]


def test_a_digest_that_is_gone_or_someone_elses_is_not_linked(
    db: Database, conn: Connection
) -> None:
    paper = _paper(db)
    ada, _ = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    _, bobs_digest = _user_with_digest(db, "bob@example.org", timedelta(hours=2))

    record_click(
        conn, ada, paper, bobs_digest, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3
    )
    record_click(conn, ada, paper, 999_999, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3)
    record_click(conn, ada, paper, None, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3)

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
        record_click(conn, user_id, paper_id, digest, NOW, scanner_window_s=10, burst_s=3)

    assert raised.value.field == field
    assert _events(db) == []


def test_a_long_user_agent_is_cut_to_512_characters(db: Database, conn: Connection) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    record_click(
        conn, ada, paper, digest, NOW, user_agent=FIREFOX * 20, scanner_window_s=10, burst_s=3
    )

    [event] = _events(db)
    assert event[5] == (FIREFOX * 20)[:512]


@pytest.mark.parametrize(("sent_ago", "suspect"), [(WINDOW_S, False), (WINDOW_S - 1e-6, True)])
def test_the_scanner_window_ends_where_suspect_reason_says(
    db: Database, conn: Connection, sent_ago: float, suspect: bool
) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(seconds=sent_ago))

    click = record_click(
        conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3
    )

    assert click.suspect is suspect
    assert [e[4] for e in _events(db)] == [suspect]


def test_a_readers_click_is_one_insert_then_the_burst_check(db: Database, conn: Connection) -> None:
    paper = _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(conn, "before_cursor_execute", count)
    record_click(conn, ada, paper, digest, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3)

    # The store, then the burst check that must run after it committed: two links of one
    # scanner sweep stored at once cannot see each other from inside their own INSERTs.
    assert [s.split()[0] for s in statements] == ["INSERT", "UPDATE"]
    [(_, _, _, _, suspect, _)] = _events(db)
    assert not suspect


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
                await store_reader_click(
                    writes, *ids, NOW, user_agent=FIREFOX, scanner_window_s=10, burst_s=3
                )
                for ids in [(ada, paper, digest), (bob, paper, fresh), (999_999, paper, None)]
            ]
        finally:
            await writes.close()

    reader, scanned, nobody = asyncio.run(clicks())

    assert reader == Click(url="https://arxiv.org/abs/1706.03762", suspect=False)
    assert (scanned, nobody) == (None, None)  # for record_click to check and store or refuse
    assert _events(db) == [(ada, paper, "click", digest, False, FIREFOX)]


def _clicks(
    conn: Connection, ada: int, digest: int, papers: list[int], every_s: float
) -> list[bool]:
    """Follow each paper's link in turn, ``every_s`` apart; whether each looked automated."""
    return [
        record_click(
            conn, ada, paper, digest, NOW + timedelta(seconds=i * every_s),
            user_agent=FIREFOX, scanner_window_s=WINDOW_S, burst_s=3,
        ).suspect
        for i, paper in enumerate(papers)
    ]  # fmt: skip


def test_a_scanner_with_a_browser_agent_following_every_link_is_discarded_whole(
    db: Database, conn: Connection
) -> None:
    papers = [_paper(db) for _ in range(3)]
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    seen = _clicks(conn, ada, digest, papers, every_s=0.5)

    # The first counted when it came (nothing told it from a reader's); the second showed
    # a burst and took the first with it.
    assert seen == [False, True, True]
    assert [e[4] for e in _events(db)] == [True, True, True]


def test_a_slow_sweep_is_caught_link_by_link(db: Database, conn: Connection) -> None:
    papers = [_paper(db) for _ in range(4)]
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    _clicks(conn, ada, digest, papers, every_s=2.5)  # each within 3 s of the one before

    assert [e[4] for e in _events(db)] == [True, True, True, True]


def test_a_double_click_is_no_burst_and_a_click_minutes_later_counts(
    db: Database, conn: Connection
) -> None:
    first, second = _paper(db), _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))

    seen = _clicks(conn, ada, digest, [first, first], every_s=0.4)  # the same link twice
    seen += _clicks(conn, ada, digest, [second], every_s=0)  # at NOW: within 3 s of both
    later = record_click(
        conn, ada, second, digest, NOW + timedelta(minutes=2),
        user_agent=FIREFOX, scanner_window_s=WINDOW_S, burst_s=3,
    )  # fmt: skip

    assert seen == [False, False, True]  # a second paper within seconds is a burst...
    assert later.suspect is False  # ...a click two minutes on is a reader's
    assert [e[4] for e in _events(db)] == [True, True, True, False]


def test_links_of_different_digests_make_no_burst(db: Database, conn: Connection) -> None:
    first, second = _paper(db), _paper(db)
    ada, monday = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    with db.session() as s:
        tuesday = DigestRow(
            user_id=ada, period="2026-11-22", status="sent", created_at=NOW, updated_at=NOW,
            sent_at=NOW - timedelta(hours=1),
        )  # fmt: skip
        s.add(tuesday)
        s.flush()
        tuesday_id = tuesday.id

    _clicks(conn, ada, monday, [first], every_s=0)
    _clicks(conn, ada, tuesday_id, [second], every_s=0)

    assert [e[4] for e in _events(db)] == [False, False]


def test_a_click_after_another_link_of_its_digest_is_checked_in_full(
    db: Database, conn: Connection
) -> None:
    first, second = _paper(db), _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    _clicks(conn, ada, digest, [first], every_s=0)
    statements: list[str] = []
    event.listen(conn, "before_cursor_execute", lambda *args: statements.append(str(args[2])))

    _clicks(conn, ada, digest, [second], every_s=0)

    assert statements[0].startswith("INSERT") and len(statements) > 1


def test_feedback_recorded_in_a_session_is_discarded_with_its_burst(db: Database) -> None:
    first, second = _paper(db), _paper(db)
    ada, digest = _user_with_digest(db, "ada@example.org", timedelta(hours=2))
    with db.session() as s:
        more = record_event(s, ada, first, "more", NOW, digest_id=digest, burst_s=3)
        assert more.suspect is False  # a single "more" counts at once
        less = record_event(
            s, ada, second, "less", NOW + timedelta(seconds=1), digest_id=digest, burst_s=3
        )
        assert (more.suspect, less.suspect) == (True, True)
        seed = record_event(s, ada, second, "seed", NOW)  # no digest: never part of a burst
        assert seed.suspect is False
