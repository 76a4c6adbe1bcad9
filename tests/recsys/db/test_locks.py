"""The training lock: one holder at a time, across sessions (and so across processes)."""

from __future__ import annotations

from recsys.db.locks import try_exclusive
from recsys.db.session import Database


def test_only_one_session_holds_a_lock_and_it_is_free_again_after(db: Database) -> None:
    with db.session() as first, try_exclusive(first, "job") as held:
        assert held
        with db.session() as second:
            with try_exclusive(second, "job") as also:
                assert not also
            with try_exclusive(second, "another job") as other:
                assert other  # locks are per name
    with db.session() as third, try_exclusive(third, "job") as again:
        assert again
