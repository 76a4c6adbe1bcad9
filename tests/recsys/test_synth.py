"""The synthetic world: deterministic, the right shapes, and clicks that follow the click model."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recsys.synth import (
    BUILTIN_TOPICS,
    CLICK_BIAS,
    CLICK_SLOPE,
    World,
    click_probability,
    generate_world,
    write_world,
)

NOW = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(200, 300, n_topics=12, clicks_per_user=8, seed=3, now=NOW)


def _assert_same_world(a: World, b: World) -> None:
    assert a.papers == b.papers
    assert a.user_emails == b.user_emails
    assert a.user_names == b.user_names
    assert a.user_interests == b.user_interests
    for name in ("paper_topics", "paper_mix", "user_prefs", "events_user", "events_paper"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.events_at, b.events_at)


# --- determinism ---------------------------------------------------------------------------
def test_it_gives_the_same_world_for_the_same_seed(world: World) -> None:
    again = generate_world(200, 300, n_topics=12, clicks_per_user=8, seed=3, now=NOW)
    _assert_same_world(world, again)


def test_it_gives_a_different_world_for_another_seed(world: World) -> None:
    other = generate_world(200, 300, n_topics=12, clicks_per_user=8, seed=4, now=NOW)
    assert [p.title for p in other.papers] != [p.title for p in world.papers]
    assert not np.array_equal(other.user_prefs, world.user_prefs)
    assert not np.array_equal(other.paper_topics, world.paper_topics)


def test_papers_do_not_depend_on_the_number_of_users(world: World) -> None:
    fewer_users = generate_world(10, 300, n_topics=12, seed=3, now=NOW)
    assert fewer_users.papers == world.papers


def test_built_in_topics_have_distinct_vocabularies() -> None:
    assert len(BUILTIN_TOPICS) == 16
    all_words = [w.lower() for t in BUILTIN_TOPICS for w in t.words]
    assert len(set(all_words)) == len(all_words)
    assert all(25 <= len(t.words) <= 40 for t in BUILTIN_TOPICS)


# --- sizes and shapes -----------------------------------------------------------------------
def test_arrays_have_the_documented_shapes_and_dtypes(world: World) -> None:
    assert len(world.topics) == 12
    assert len(world.papers) == world.n_papers == 300
    assert world.paper_topics.shape == (300,) and world.paper_topics.dtype == np.int32
    assert world.paper_mix.shape == (300, 12) and world.paper_mix.dtype == np.float32
    assert world.user_prefs.shape == (200, 12) and world.user_prefs.dtype == np.float32
    assert len(world.user_emails) == len(world.user_names) == len(world.user_interests) == 200
    n_events = world.events_user.size
    assert world.events_user.dtype == np.int32 and world.events_paper.dtype == np.int32
    assert world.events_paper.shape == world.events_at.shape == (n_events,)
    assert world.events_at.dtype == np.dtype("datetime64[s]")


def test_topic_mixtures_and_preferences_are_distributions(world: World) -> None:
    np.testing.assert_allclose(world.paper_mix.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(world.user_prefs.sum(axis=1), 1.0, atol=1e-6)
    assert (world.paper_mix.argmax(axis=1) == world.paper_topics).all()
    main_topics = (world.user_prefs > 0.05).sum(axis=1)  # above the thin background
    assert main_topics.min() >= 1 and main_topics.max() <= 3


def test_every_topic_has_papers(world: World) -> None:
    assert np.bincount(world.paper_topics, minlength=12).min() == 300 // 12


def test_user_emails_are_distinct(world: World) -> None:
    assert len(set(world.user_emails)) == 200
    assert world.user_emails[1] == "user0001@example.org"


def test_user_interests_come_from_their_top_topic(world: World) -> None:
    for interests, prefs in zip(world.user_interests, world.user_prefs, strict=True):
        top_words = set(world.topics[int(prefs.argmax())].words)
        assert 2 <= len(interests) <= 4
        assert top_words & set(interests)


def test_papers_carry_ids_urls_authors_categories_and_dates(world: World) -> None:
    for i, paper in enumerate(world.papers):
        assert paper.external_id == f"synth-{i:06d}"
        assert paper.url == f"https://papers.example.org/synth-{i:06d}"
        assert 1 <= len(paper.authors) <= 3
        assert paper.categories
        assert paper.published is not None
        assert NOW - timedelta(days=30) <= paper.published <= NOW
        assert 2 <= paper.abstract.count(". ") + 1 <= 4


def test_a_title_names_its_main_topic(world: World) -> None:
    for paper, topic in zip(world.papers, world.paper_topics, strict=True):
        words = world.topics[int(topic)].words
        title = paper.title.lower()
        assert any(word.lower() in title for word in words), paper.title


def test_it_rejects_more_topics_than_it_has_built_in() -> None:
    with pytest.raises(ValueError, match="n_topics"):
        generate_world(5, 5, n_topics=len(BUILTIN_TOPICS) + 1, now=NOW)


@pytest.mark.parametrize(("n_users", "n_papers", "clicks"), [(-1, 5, 1), (5, 0, 1), (5, 5, -1)])
def test_it_rejects_out_of_range_sizes(n_users: int, n_papers: int, clicks: int) -> None:
    with pytest.raises(ValueError):
        generate_world(n_users, n_papers, clicks_per_user=clicks, now=NOW)


def test_it_handles_fewer_papers_than_topics() -> None:
    small = generate_world(20, 5, n_topics=12, clicks_per_user=3, now=NOW)
    assert small.paper_mix.shape == (5, 12)
    assert small.events_paper.max() < 5


def test_no_clicks_means_no_events() -> None:
    quiet = generate_world(20, 50, clicks_per_user=0, now=NOW)
    assert quiet.events_user.size == 0


def test_a_naive_now_is_taken_as_utc() -> None:
    naive = generate_world(5, 10, now=NOW.replace(tzinfo=None))
    assert naive.now == NOW


# --- events follow the click model -------------------------------------------------------------
def test_users_click_about_clicks_per_user_distinct_papers(world: World) -> None:
    counts = np.bincount(world.events_user, minlength=200)
    assert counts.min() >= 1
    assert counts.mean() == pytest.approx(8, rel=0.15)
    pairs = world.events_user.astype(np.int64) * 300 + world.events_paper
    assert np.unique(pairs).size == pairs.size


def test_clicks_concentrate_on_each_users_top_two_topics(world: World) -> None:
    top2 = np.argsort(-world.user_prefs, axis=1)[:, :2]
    clicked_topic = world.paper_topics[world.events_paper]
    on_top2 = (top2[world.events_user] == clicked_topic[:, None]).any(axis=1)
    assert on_top2.mean() >= 0.9
    per_user = np.bincount(world.events_user, weights=on_top2) / np.bincount(world.events_user)
    assert np.median(per_user) >= 0.7


def test_clicks_happen_after_publication_and_before_now(world: World) -> None:
    published = np.array(
        [p.published.replace(tzinfo=None) for p in world.papers if p.published],
        dtype="datetime64[s]",
    )
    assert (world.events_at >= published[world.events_paper]).all()
    assert (world.events_at <= np.datetime64(NOW.replace(tzinfo=None), "s")).all()
    assert (np.diff(world.events_at.astype(np.int64)) >= 0).all()


def test_event_ages_count_back_from_now(world: World) -> None:
    ages = world.events_age_s
    assert ages.dtype == np.float64 and (ages >= 0).all()
    first = NOW - timedelta(seconds=float(ages[0]))
    assert first.replace(tzinfo=None) == world.events_at[0].astype(datetime)


def test_click_probability_is_the_documented_sigmoid(world: World) -> None:
    users, papers = np.array([0, 5, 7]), np.array([3, 3, 100])
    affinity = (world.user_prefs[users] * world.paper_mix[papers]).sum(axis=1)
    expected = 1 / (1 + np.exp(-(CLICK_SLOPE * affinity + CLICK_BIAS)))
    np.testing.assert_allclose(click_probability(world, users, papers), expected, rtol=1e-6)


def test_click_probability_is_higher_on_a_users_main_topic(world: World) -> None:
    p = click_probability(world, np.arange(200)[:, None], np.arange(300)[None, :])
    assert p.shape == (200, 300)
    on_main = world.user_prefs.argmax(axis=1)[:, None] == world.paper_topics[None, :]
    weakest = world.user_prefs.argmin(axis=1)[:, None] == world.paper_topics[None, :]
    assert p[on_main].mean() > 0.3
    assert p[weakest].mean() < 0.05
    per_user_on = (p * on_main).sum(axis=1) / on_main.sum(axis=1)
    per_user_off = (p * weakest).sum(axis=1) / weakest.sum(axis=1)
    assert (per_user_on > per_user_off).all()


# --- files --------------------------------------------------------------------------------------
def test_write_world_writes_files_the_ingestion_parsers_read(world: World, tmp_path: Path) -> None:
    paths = write_world(world, tmp_path / "out")
    assert set(paths) == {"papers", "users", "events"}
    records = [json.loads(line) for line in paths["papers"].read_text().splitlines()]
    assert len(records) == 300
    keys = {"id", "title", "abstract", "authors", "categories", "published", "url"}
    assert all(set(r) == keys for r in records)
    assert records[0]["id"] == "synth-000000"
    assert datetime.fromisoformat(records[0]["published"]) == world.papers[0].published

    with paths["users"].open(newline="") as f:
        users = list(csv.DictReader(f))
    assert [u["email"] for u in users] == world.user_emails
    assert users[0]["interests"].split(";") == world.user_interests[0]

    with paths["events"].open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["user_email", "paper_id", "kind", "timestamp"]
        events = list(reader)
    assert len(events) == world.events_user.size
    first = events[0]
    assert first["user_email"] == world.user_emails[world.events_user[0]]
    assert first["paper_id"] == world.papers[world.events_paper[0]].external_id
    assert {e["kind"] for e in events} == {"click"}
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.tzinfo is not None
    assert stamp.replace(tzinfo=None) == world.events_at[0].astype(datetime)


def test_a_large_world_is_generated_vectorised() -> None:
    # No timing assertion; this guards against a per-event Python path creeping back in
    # (20k users x 10 clicks takes about a second).
    big = generate_world(20_000, 20_000, clicks_per_user=10, now=NOW)
    assert big.events_user.size == pytest.approx(200_000, rel=0.05)


def test_every_title_survives_ingestion_deduplication() -> None:
    from recsys.catalog.keys import title_fingerprint

    world = generate_world(5, 5000, seed=3, now=NOW)
    fingerprints = {title_fingerprint(p.title) for p in world.papers}
    assert len(fingerprints) == 5000
