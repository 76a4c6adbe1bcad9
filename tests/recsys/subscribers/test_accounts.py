"""Self-service subscribers: double opt-in, preferences, seeds, export and deletion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recsys.catalog.papers import ids_by_title, upsert_papers
from recsys.db.models import (
    DeliveryAttemptRow,
    DigestItemRow,
    DigestRow,
    EventRow,
    ExperimentRow,
    InterestRow,
    PaperRow,
    ProviderEventRow,
    SuppressionRow,
    UserRow,
)
from recsys.db.session import Database
from recsys.digests.outbox import plan_due
from recsys.domain import Paper
from recsys.subscribers.accounts import (
    Additions,
    Interest,
    Preferences,
    SubscriberError,
    add_interests,
    confirm,
    confirmation_sent,
    create_user,
    delete_account,
    export_data,
    import_library,
    is_suppressed,
    pause,
    resume,
    seed_papers,
    sign_up,
    suppress,
    unsent_confirmations,
    unsubscribe,
    update_preferences,
)
from recsys.subscribers.events import record_event
from recsys.subscribers.library import SeedPaper, parse_library
from tests.conftest import NOW

SPEECH = Preferences(interests=[Interest("keyword", "speech recognition")], send_hour=8)


def _count(db: Database, row: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(row)) or 0)


def _store_papers(db: Database) -> dict[str, int]:
    papers = [
        Paper(title="Attention Is All You Need", arxiv_id="1706.03762"),
        Paper(title="Deep learning", doi="10.1038/nature14539"),
        Paper(title="Speech recognition with deep recurrent networks"),
    ]
    with db.session() as s:
        upsert_papers(s, papers, NOW)
        return ids_by_title(s, [p.title for p in papers])


def test_a_sign_up_waits_for_confirmation_and_is_never_planned(db: Database) -> None:
    with db.session() as s:
        signed = sign_up(s, "Ada@Example.org", NOW, SPEECH)
        assert signed.needs_confirmation
        assert (signed.user.email, signed.user.status) == ("ada@example.org", "pending")
        assert signed.user.confirmed_at is None and signed.user.next_digest_at is None

    with db.session() as s:
        assert plan_due(s, NOW + timedelta(days=30)) == []


def test_confirming_activates_the_subscriber_with_a_digest_due_at_once(db: Database) -> None:
    with db.session() as s:
        user_id = sign_up(s, "ada@example.org", NOW, SPEECH).user.id
    with db.session() as s:
        assert confirm(s, user_id, NOW)
        assert not confirm(s, user_id, NOW + timedelta(hours=1))  # idempotent
    with db.session() as s:
        user = s.get(UserRow, user_id)
        assert user is not None
        assert (user.status, user.confirmed_at, user.next_digest_at) == ("active", NOW, NOW)
        assert len(plan_due(s, NOW)) == 1


def test_signing_up_with_a_confirmed_address_changes_nothing(db: Database) -> None:
    with db.session() as s:
        create_user(s, "ada@example.org", NOW, interests=[Interest("keyword", "vision")])
    with db.session() as s:
        again = sign_up(s, "ada@example.org", NOW, SPEECH)
        assert not again.needs_confirmation
        assert again.user.status == "active"
        assert [i.value for i in again.user.interests] == ["vision"]


def test_an_unsubscribed_address_can_sign_up_again_and_confirm(db: Database) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        unsubscribe(s, user_id, NOW)
    with db.session() as s:
        again = sign_up(s, "ada@example.org", NOW, SPEECH)
        assert again.needs_confirmation and again.user.status == "pending"
        assert confirm(s, user_id, NOW)
    assert _count(db, SuppressionRow) == 0


def test_a_sign_up_for_a_pending_account_leaves_its_settings_alone(db: Database) -> None:
    with db.session() as s:
        first = sign_up(s, "ada@example.org", NOW, Preferences(name="Ada", send_hour=6))
        assert first.user is not None
    with db.session() as s:
        again = sign_up(s, "ada@example.org", NOW, SPEECH)
        assert again.needs_confirmation and again.user is not None
        assert (again.user.name, again.user.send_hour, again.user.interests) == ("Ada", 6, [])


@pytest.mark.parametrize("reason", ["bounce", "spamreport", "dropped"])
def test_an_address_suppressed_for_delivery_gets_no_account_and_no_e_mail(
    db: Database, reason: str
) -> None:
    with db.session() as s:
        suppress(s, "ada@example.org", reason, NOW)
    with db.session() as s:
        signed = sign_up(s, "ada@example.org", NOW, SPEECH)
        assert (signed.user, signed.needs_confirmation) == (None, False)
    assert _count(db, UserRow) == 0


@pytest.mark.parametrize(
    ("prefs", "field"),
    [
        (Preferences(timezone="Mars/Olympus"), "timezone"),
        (Preferences(send_hour=24), "send_hour"),
        (Preferences(frequency="hourly"), "frequency"),
        (Preferences(digest_size=0), "digest_size"),
        (Preferences(interests=[Interest("mood", "happy")]), "interests.kind"),
        (Preferences(interests=[Interest("keyword", "  ")]), "interests.value"),
        (Preferences(interests=[Interest("keyword", "nul\x00")]), "interests.value"),
        (Preferences(name="Ada\x00"), "name"),
    ],
)
def test_invalid_preferences_name_the_field_and_write_nothing(
    db: Database, prefs: Preferences, field: str
) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW, interests=[Interest("keyword", "x")]).id
    with pytest.raises(SubscriberError) as caught, db.session() as s:
        update_preferences(s, user_id, prefs, NOW)

    assert caught.value.field == field
    with db.session() as s:
        user = s.get(UserRow, user_id)
        assert user is not None and [i.value for i in user.interests] == ["x"]


def test_a_new_send_hour_moves_the_next_digest(db: Database) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW, timezone="Europe/Paris").id
    with db.session() as s:
        update_preferences(s, user_id, Preferences(send_hour=18, digest_size=5), NOW)
    with db.session() as s:
        user = s.get(UserRow, user_id)
        assert user is not None
        # NOW is 07:00 UTC, 08:00 in Paris: the next 18:00 after today's period is tomorrow's.
        assert user.next_digest_at == NOW + timedelta(days=1, hours=10)
        assert user.digest_size == 5


def test_interests_are_replaced_without_duplicates(db: Database) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW, interests=[Interest("keyword", "a")]).id
    with db.session() as s:
        interests = [
            Interest("keyword", "GNN"),
            Interest("keyword", "gnn "),
            Interest("author", "Kipf"),
        ]
        update_preferences(s, user_id, Preferences(interests=interests), NOW)
    with db.session() as s:
        rows = s.scalars(select(InterestRow).order_by(InterestRow.id)).all()
        assert [(r.kind, r.value) for r in rows] == [("keyword", "GNN"), ("author", "Kipf")]


def test_pausing_stops_planning_and_resuming_starts_at_the_next_send_hour(db: Database) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        assert pause(s, user_id) and not pause(s, user_id)
    with db.session() as s:
        assert plan_due(s, NOW) == []
        assert resume(s, user_id, NOW) and not resume(s, user_id, NOW)
    with db.session() as s:
        user = s.get(UserRow, user_id)
        assert user is not None and user.status == "active"
        assert user.next_digest_at == NOW + timedelta(days=1)  # 07:00 UTC tomorrow


def test_resuming_after_an_unsubscribe_lifts_only_that_suppression(db: Database) -> None:
    with db.session() as s:
        ada = create_user(s, "ada@example.org", NOW).id
        ben = create_user(s, "ben@example.org", NOW).id
        unsubscribe(s, ada, NOW)
        unsubscribe(s, ben, NOW)
        s.execute(
            SuppressionRow.__table__.update()
            .where(SuppressionRow.email == "ben@example.org")
            .values(reason="bounce")
        )
    with db.session() as s:
        resume(s, ada, NOW)
        resume(s, ben, NOW)
        left = s.scalars(select(SuppressionRow.email)).all()
    assert left == ["ben@example.org"]


def test_seed_papers_are_found_by_arxiv_id_doi_or_title(db: Database) -> None:
    ids = _store_papers(db)
    seeds = [
        SeedPaper(arxiv_id="1706.03762"),
        SeedPaper(doi="10.1038/nature14539"),
        SeedPaper(title="speech recognition with DEEP recurrent networks"),
        SeedPaper(title="A paper we do not have"),
        SeedPaper(arxiv_id="2401.99999"),
        SeedPaper(arxiv_id="1706.03762"),
    ]
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        report = update_preferences(s, user_id, Preferences(), NOW, Additions(seeds=seeds))

    assert report.as_text == ["A paper we do not have"]
    assert report.missing == ["arXiv:2401.99999"]
    with db.session() as s:
        assert {p.id for p in seed_papers(s, user_id)} == set(ids.values())
        assert _count(db, EventRow) == 3  # the repeated seed is stored once
        user = s.get(UserRow, user_id)
        assert user is not None
        assert [(i.kind, i.value) for i in user.interests] == [("text", "A paper we do not have")]


def test_a_library_adds_seeds_keywords_and_authors(db: Database) -> None:
    _store_papers(db)
    library = parse_library(
        "@article{a, title={Attention is all you need}, author={Vaswani, Ashish},"
        " keywords={transformers}}\n"
        "@article{b, title={Unknown paper}, author={Vaswani, Ashish}, keywords={transformers}}"
    )
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        report = import_library(s, user_id, library, NOW)
        user = s.get(UserRow, user_id)
        assert user is not None
        assert [(i.kind, i.value) for i in user.interests] == [
            ("keyword", "transformers"),
            ("author", "Ashish Vaswani"),
            ("text", "Unknown paper"),
        ]
    assert report.found == ["Attention is all you need"]


def test_a_library_import_reports_every_entry_skipped_found_or_kept_as_a_topic(
    db: Database,
) -> None:
    ids = _store_papers(db)
    library = parse_library(
        "@article{a*1, title={Speech Recognition with {Deep} Recurrent Networks.}}\n"  # a * key
        "@set{s, entryset={a*1}}\n"
        "@article{b, title={Sp{\\'e}cial r{\\o}le of nothing}}\n"
        "@article{c, title={Unclosed\n"
        "@article{d, doi={10.9999/absent}}\n"
    )
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        report = import_library(s, user_id, library, NOW)
        assert [p.id for p in seed_papers(s, user_id)] == [
            ids["Speech recognition with deep recurrent networks"]
        ]  # matched by title fingerprint: case, braces and the full stop do not matter

    assert report.found == ["Speech Recognition with Deep Recurrent Networks."]
    assert report.as_text == ["Spécial røle of nothing"]
    assert report.missing == ["doi:10.9999/absent"]
    assert report.skipped == [
        "line 2: @set{s}: a @set only groups other entries (entryset = {a*1}); "
        "they are imported on their own",
        "line 4: this value's '{' is never closed; this entry is skipped",
    ]


def test_seeds_and_topics_past_the_limits_are_reported_not_dropped(db: Database) -> None:
    library = parse_library("".join(f"@misc{{k{i}, title={{Paper {i}}}}}\n" for i in range(130)))
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        add_interests(s, user_id, [Interest("keyword", f"kw{i}") for i in range(95)])
        report = import_library(s, user_id, library, NOW)

    assert report.as_text == [f"Paper {i}" for i in range(5)]
    assert report.missing[0] == "Paper 5 (over the limit of 100 interests)"
    assert report.missing[-1] == "Paper 129 (over the limit of 100 seed papers)"
    assert len(report.missing) == 125


def _sent_digest(s: Session, user_id: int, period: str, **fields: Any) -> DigestRow:
    digest = DigestRow(
        user_id=user_id, period=period, status="sent", created_at=NOW, updated_at=NOW,
        sent_at=NOW, **fields,
    )  # fmt: skip
    s.add(digest)
    s.flush()
    return digest


def _provider_event(event_id: str, email: str, digest_id: int | None, **payload: Any) -> Any:
    return ProviderEventRow(
        provider="sendgrid", event_id=event_id, email=email, kind="open", digest_id=digest_id,
        occurred_at=NOW, received_at=NOW, payload={"email": email, **payload},
    )  # fmt: skip


def test_the_export_holds_everything_stored_about_the_subscriber(db: Database) -> None:
    ids = _store_papers(db)
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW, interests=[Interest("keyword", "nlp")]).id
        trial = ExperimentRow(name="mmr-trial", salt="s", variants=[], created_at=NOW)
        s.add(trial)
        s.flush()
        digest = _sent_digest(s, user_id, "2026-11-21", experiment_id=trial.id, variant="mmr")
        held_out = _sent_digest(s, user_id, "2026-11-22", variant="holdout")
        paper = ids["Deep learning"]
        s.add(DigestItemRow(digest_id=digest.id, paper_id=paper, position=0, score=0.5, reason="r"))
        record_event(s, user_id, paper, "click", NOW, digest_id=digest.id, user_agent="UA")
        s.add(DeliveryAttemptRow(
            digest_id=digest.id, attempt=1, backend="smtp", started_at=NOW, outcome="transient",
            detail="SMTP 451",
        ))  # fmt: skip
        s.add(_provider_event("e1", "ada@example.org", digest.id, ip="203.0.113.9", useragent="M"))
        s.add(_provider_event("e2", "fwd@example.org", held_out.id))  # read where forwarded
        s.add(_provider_event("e3", "ben@example.org", None))  # somebody else's

    with db.session() as s:
        data = export_data(s, user_id)

    assert data["profile"]["email"] == "ada@example.org"
    assert data["interests"] == [{"kind": "keyword", "value": "nlp"}]
    [event] = data["events"]
    assert (event["kind"], event["paper"]["title"], event["user_agent"]) == (
        "click", "Deep learning", "UA",
    )  # fmt: skip
    sent, holdout = data["digests"]
    assert sent["items"] == [
        {
            "paper_id": paper, "title": "Deep learning", "score": 0.5, "reason": "r",
            "propensity": 1.0, "explored": False,
        }
    ]  # fmt: skip
    assert (sent["experiment"], sent["variant"]) == ("mmr-trial", "mmr")
    assert (holdout["experiment"], holdout["variant"], holdout["items"]) == (None, "holdout", [])
    [attempt] = sent["delivery_attempts"]
    assert (attempt["backend"], attempt["outcome"], attempt["detail"]) == (
        "smtp", "transient", "SMTP 451",
    )  # fmt: skip
    assert holdout["delivery_attempts"] == []
    opened, forwarded = data["provider_events"]
    assert opened["payload"]["ip"] == "203.0.113.9"
    assert (opened["payload"]["useragent"], opened["digest_id"]) == ("M", sent["id"])
    assert (forwarded["email"], forwarded["digest_id"]) == ("fwd@example.org", holdout["id"])
    assert data["suppressed"] is False


class _Outbox:
    """Records what a deletion asked the outbox to forget."""

    def __init__(self) -> None:
        self.forgotten: list[tuple[int, list[int]]] = []

    def forget(self, user_id: int, digest_ids: Iterable[int]) -> int:
        self.forgotten.append((user_id, sorted(digest_ids)))
        return 0


@pytest.mark.parametrize("kept", ["bounce", "spamreport"])
def test_deleting_an_account_erases_its_rows_but_keeps_a_bounce_or_spam_suppression(
    db: Database, kept: str
) -> None:
    ids = _store_papers(db)
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW, interests=[Interest("keyword", "x")]).id
        other = create_user(s, "ben@example.org", NOW).id
        digests = [_sent_digest(s, uid, "p") for uid in (user_id, other)]
        for uid, digest in zip((user_id, other), digests, strict=True):
            record_event(s, uid, ids["Deep learning"], "click", NOW, digest_id=digest.id)
            s.add(DigestItemRow(digest_id=digest.id, paper_id=ids["Deep learning"], position=0,
                                score=1.0))  # fmt: skip
            s.add(DeliveryAttemptRow(digest_id=digest.id, attempt=1, backend="file",
                                     started_at=NOW))  # fmt: skip
        ada_digest, ben_digest = (d.id for d in digests)
        s.add(_provider_event("e1", "ada@example.org", None, ip="203.0.113.9"))
        s.add(_provider_event("e2", "fwd@example.org", ada_digest, ip="198.51.100.7"))
        s.add(_provider_event("e3", "ben@example.org", ben_digest))
        suppress(s, "ada@example.org", kept, NOW)
        suppress(s, "ben@example.org", "unsubscribe", NOW)

    outbox = _Outbox()
    with db.session() as s:
        assert delete_account(s, user_id, outbox)
        assert not delete_account(s, user_id, outbox)

    assert outbox.forgotten == [(user_id, [ada_digest])]
    with db.session() as s:
        assert s.scalars(select(UserRow.email)).all() == ["ben@example.org"]
        assert s.scalars(select(EventRow.user_id)).all() == [other]
        assert s.scalars(select(DigestRow.id)).all() == [ben_digest]
        assert s.scalars(select(DigestItemRow.digest_id)).all() == [ben_digest]
        assert s.scalars(select(DeliveryAttemptRow.digest_id)).all() == [ben_digest]
        assert s.scalars(select(ProviderEventRow.event_id)).all() == ["e3"]
        assert s.scalars(select(SuppressionRow.email)).all() == [
            "ada@example.org", "ben@example.org",
        ]  # fmt: skip
        assert s.scalar(select(SuppressionRow.reason).filter_by(email="ada@example.org")) == kept
        assert _count(db, InterestRow) == 0
        assert _count(db, PaperRow) == 3


def test_deleting_an_unsubscribed_account_drops_its_unsubscribe_suppression(db: Database) -> None:
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        unsubscribe(s, user_id, NOW)
        assert is_suppressed(s, "ada@example.org")

    with db.session() as s:
        assert delete_account(s, user_id, _Outbox())

    assert _count(db, SuppressionRow) == 0


def test_an_event_keeps_its_user_agent_and_suspect_flag(db: Database) -> None:
    ids = _store_papers(db)
    with db.session() as s:
        user_id = create_user(s, "ada@example.org", NOW).id
        event = record_event(
            s, user_id, ids["Deep learning"], "click", NOW, user_agent="x" * 600, suspect=True
        )
        assert event.suspect and event.user_agent == "x" * 512


def test_only_settled_young_unsent_pending_sign_ups_are_swept_and_each_try_counts(
    db: Database,
) -> None:
    prefs = Preferences()
    with db.session() as s:
        due = sign_up(s, "due@example.org", NOW - timedelta(minutes=5), prefs).user
        fresh = sign_up(s, "fresh@example.org", NOW - timedelta(seconds=10), prefs).user
        stale = sign_up(s, "stale@example.org", NOW - timedelta(days=30), prefs).user
        mailed = sign_up(s, "mailed@example.org", NOW - timedelta(minutes=5), prefs).user
        assert due and fresh and stale and mailed
        confirmation_sent(s, mailed.id, NOW - timedelta(minutes=4))
    sweep = {"settle": timedelta(minutes=1), "ttl": timedelta(days=7), "max_attempts": 2}

    with db.session() as s:
        first = unsent_confirmations(s, NOW, **sweep)  # type: ignore[arg-type]
    with db.session() as s:
        second = unsent_confirmations(s, NOW, **sweep)  # type: ignore[arg-type]
    with db.session() as s:
        third = unsent_confirmations(s, NOW, **sweep)  # type: ignore[arg-type]

    assert first == second == [due.id]
    assert third == []  # two attempts, then it waits for the owner to sign up again
