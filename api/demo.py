"""The demo: build a corpus and demo users, then train, plan, score and send through the worker.

Everything runs the production path: tasks go through a real broker to a real worker in
a child process; this module only prepares data and watches the database for the result.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.digest_run import wait_until_final
from recsys.catalog.papers import (
    all_paper_ids,
    ids_by_external_id,
    ids_by_title,
    parse_files,
    upsert_papers,
)
from recsys.db.models import EventRow, UserRow
from recsys.db.session import Database
from recsys.domain import Paper
from recsys.progress import Progress, no_progress
from recsys.settings import Settings
from recsys.subscribers.accounts import Interest, create_user
from recsys.synth import World, generate_world
from recsys.training import store
from workers.embedded import Embedded

_WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")
# Words too generic to describe what a demo user is interested in.
_STOP = frozenset(
    ["with", "from", "that", "this", "their", "towards", "using", "model", "models", "large"]
)


class DemoError(RuntimeError):
    """The demo could not finish; the message says why and what to do."""


@dataclass
class DemoSummary:
    users: int
    papers: int
    digests_sent: int
    outbox: str
    statuses: dict[str, int] = field(default_factory=dict)
    model_version: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def run_demo(
    settings: Settings,
    now: datetime,
    *,
    n_users: int,
    paper_files: Sequence[Path] = (),
    timeout_s: float = 600.0,
    progress: Progress = no_progress,
    seed: int = 0,
) -> DemoSummary:
    """Prepare the corpus and users, run one digest for every user, return the summary."""
    started = time.perf_counter()
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    progress("corpus", 0, 1)
    with db.session() as session:
        n_papers, user_ids = _prepare(session, now, n_users, paper_files, seed)
        _check_due(session, user_ids, now)
    progress("corpus", 1, 1)
    # With beat, as in production: the sweep recovers what a lost task or reply left, and
    # the demo shows the service running by itself rather than a one-off pipeline.
    with Embedded(settings, beat=True) as runtime:
        assert runtime.celery is not None
        plan = runtime.celery.signature("paperboy.plan", immutable=True)
        runtime.celery.send_task("paperboy.train", link=plan)
        counts = wait_until_final(db, now, len(user_ids), runtime.alive, timeout_s, progress)
    with db.session() as session:
        version = store.active_version(session)
    db.dispose()
    return DemoSummary(
        users=len(user_ids),
        papers=n_papers,
        digests_sent=counts.get("sent", 0),
        outbox=str(settings.outbox_dir.resolve()),
        statuses=dict(counts),
        model_version=version,
        seconds=round(time.perf_counter() - started, 2),
    )


def _prepare(
    session: Session, now: datetime, n_users: int, paper_files: Sequence[Path], seed: int
) -> tuple[int, list[int]]:
    if paper_files:
        papers, errors = parse_files(paper_files)
        if errors:
            raise DemoError("; ".join(errors))
        upsert_papers(session, papers, now)
        users = _users_from_papers(session, papers, n_users, now, seed)
        return len(all_paper_ids(session)), users
    world = generate_world(n_users, max(300, 3 * n_users), seed=seed, now=now)
    return len(world.papers), load_world(session, world, now)


def load_world(session: Session, world: World, now: datetime) -> list[int]:
    """Store a synthetic world's papers, users, interests and clicks; return the user ids."""
    upsert_papers(session, world.papers, now)
    paper_ids = ids_by_external_id(session, [p.external_id or "" for p in world.papers])
    user_ids = []
    for i, email in enumerate(world.user_emails):
        interests = [Interest("keyword", kw) for kw in world.user_interests[i]]
        user_ids.append(_get_or_create(session, email, world.user_names[i], interests, now))
    events = [
        EventRow(
            user_id=user_ids[u],
            paper_id=paper_ids[p],
            kind="click",
            created_at=now - timedelta(seconds=float(age)),
        )
        for u, p, age in zip(world.events_user, world.events_paper, world.events_age_s, strict=True)
    ]
    if not _has_events(session, user_ids):
        session.add_all(events)
    return user_ids


def _users_from_papers(
    session: Session,
    papers: Sequence[Paper],
    n_users: int,
    now: datetime,
    seed: int,
) -> list[int]:
    """Demo users for a real corpus: each seeded with one paper and keywords from its title."""
    if not papers:
        raise DemoError("the given files hold no papers")
    rng = random.Random(seed)
    by_title = ids_by_title(session, [p.title for p in papers])
    user_ids = []
    for i in range(n_users):
        paper = papers[rng.randrange(len(papers))]
        words = [w for w in _WORD.findall(paper.title) if w.lower() not in _STOP][:3]
        interests = [Interest("keyword", w) for w in words] or [Interest("text", paper.title)]
        uid = _get_or_create(session, f"demo{i + 1:04d}@example.org", None, interests, now)
        if not _has_events(session, [uid]):
            session.add(
                EventRow(user_id=uid, paper_id=by_title[paper.title], kind="seed", created_at=now)
            )
        user_ids.append(uid)
    return user_ids


def _check_due(session: Session, user_ids: list[int], now: datetime) -> None:
    not_due = session.scalar(
        select(UserRow.email).where(UserRow.id.in_(user_ids), UserRow.next_digest_at > now).limit(1)
    )
    if not_due is not None:
        raise DemoError(
            f"{not_due} already had today's digest in this DATA_DIR; "
            "run `paperboy demo --reset` to start over"
        )


def _get_or_create(
    session: Session, email: str, name: str | None, interests: list[Interest], now: datetime
) -> int:
    existing = session.scalar(select(UserRow).where(UserRow.email == email))
    if existing is not None:
        return existing.id
    return create_user(session, email, now, name=name, interests=interests).id


def _has_events(session: Session, user_ids: list[int]) -> bool:
    found = session.scalar(select(EventRow.id).where(EventRow.user_id.in_(user_ids)).limit(1))
    return found is not None
