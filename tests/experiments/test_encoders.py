"""The encoder comparison: its metrics on hand-computed cases, its protocols' construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.encoders import (
    _keywords,
    _split_first_sentence,
    cached,
    citeulike_author_task,
    encoder_variants,
    memoised,
    rank_metrics,
    seed_tasks,
    synth_topic_metrics,
)
from tests.conftest import shared_data


def test_rank_metrics_on_a_hand_computed_case() -> None:
    corpus = np.eye(4, dtype=np.float32)
    # Query 0 scores rows 0.1, 0.9, 0.5, 0.0; its answer (row 2) ranks 2nd: MRR 1/2.
    # Query 1's answers are rows 0 and 3; row 0 ranks 1st, row 3 is excluded from ranking.
    queries = np.array([[0.1, 0.9, 0.5, 0.0], [0.8, 0.1, 0.2, 0.9]], dtype=np.float32)
    relevant = [np.array([2]), np.array([0, 3])]
    exclude = [np.zeros(0, np.intp), np.array([3])]
    metrics = rank_metrics(queries, corpus, relevant, exclude, k=2)
    assert metrics == {"mrr": 0.75, "recall@1": 0.25, "recall@2": 0.75}


def test_a_tie_is_not_counted_in_the_querys_favour() -> None:
    corpus = np.zeros((3, 2), dtype=np.float32)  # an encoder that says nothing
    metrics = rank_metrics(corpus[:1], corpus, [np.array([0])], [np.zeros(0, np.intp)], k=1)
    assert metrics["mrr"] == pytest.approx(1 / 3, abs=1e-4)


def test_topic_agreement_counts_neighbours_of_the_same_topic() -> None:
    # Two clusters of 6 identical vectors, one topic each.
    vectors = np.repeat(np.eye(2, dtype=np.float32), 6, axis=0)
    topics = np.array([0] * 6 + [1] * 6, dtype=np.int32)
    # Each paper's 10 nearest: its 5 cluster-mates first, then 5 of the other cluster.
    assert synth_topic_metrics(vectors, topics) == 0.5


def test_keywords_drop_stop_words_and_order() -> None:
    assert _keywords("Attention Is All You Need for Long-Context Models") == (
        "attention long-context models need"
    )


def test_the_first_sentence_is_cut_from_the_abstract() -> None:
    assert _split_first_sentence("We do A. Then B! Done.") == ("We do A.", "Then B! Done.")
    assert _split_first_sentence("One sentence only") == ("One sentence only",) * 2


def test_author_task_links_papers_that_share_an_author(tmp_path: Path) -> None:
    (tmp_path / "raw-data.csv").write_text(
        '"doc.id","title","citeulike.id","raw.title","raw.abstract"\n'
        '0,"a",42,"A","alpha"\n1,"b",43,"B","beta"\n2,"c",44,"C","gamma"\n',
        encoding="utf-8",
    )
    (tmp_path / "authors.csv").write_text(
        "citeulike_paper_id\tauthor\n42\tLovelace, Ada\n44\tlovelace, ada\n43\tBabbage, C.\n"
        "99\tBabbage, C.\n",  # 99 has no text: not in the set
        encoding="utf-8",
    )
    task = citeulike_author_task(tmp_path)
    assert task.queries == ["A. alpha", "C. gamma"]
    assert [r.tolist() for r in task.relevant] == [[2], [0]]
    assert [e.tolist() for e in task.exclude] == [[0], [2]]


def test_seed_tasks_pair_each_paper_with_its_own_abstract() -> None:
    tasks = seed_tasks(shared_data("seed-papers"))
    assert [t.name for t in tasks] == ["seed-title", "seed-keywords", "seed-sentence"]
    for task in tasks:
        assert len(task.queries) == len(task.corpus) == 494  # unique seed papers
        assert all(r.tolist() == [i] for i, r in enumerate(task.relevant))


def test_without_the_extra_only_tfidf_variants_run() -> None:
    texts = ["graph networks", "protein folding", "sparse attention", "bandit feedback"]
    assert sorted(encoder_variants(texts, None)) == ["tfidf-256", "tfidf-64"]


def test_the_cache_encodes_each_text_list_once(tmp_path: Path) -> None:
    calls = []

    def encode(texts: object) -> np.ndarray:
        calls.append(texts)
        return np.ones((2, 3), dtype=np.float32)

    run = cached(encode, tmp_path, "fake")
    first, second = run(["a", "b"]), run(["a", "b"])
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 1
    run(["a", "c"])
    assert len(calls) == 2


def test_the_cache_keeps_chunks_so_an_interrupted_run_resumes(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t)] for t in texts], dtype=np.float32)

    cached(encode, tmp_path, "fake", chunk=2)(["a", "bb"])
    rows = cached(encode, tmp_path, "fake", chunk=2)(["a", "bb", "ccc"])
    assert calls == [["a", "bb"], ["ccc"]]
    np.testing.assert_array_equal(rows.ravel(), [1, 2, 3])


def test_memoised_encodes_a_repeated_text_once_and_keeps_order() -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t)] for t in texts], dtype=np.float32)

    run = memoised(encode)
    run(["a", "bb"])
    rows = run(["ccc", "a", "ccc"])
    assert calls == [["a", "bb"], ["ccc"]]
    np.testing.assert_array_equal(rows.ravel(), [3, 1, 3])
