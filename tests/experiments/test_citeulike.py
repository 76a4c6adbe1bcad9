"""citeulike-a loaders on tiny files in the real formats, and the real cold split end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments import citeulike
from experiments.evaluation import run_evaluation

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# Six users, twelve papers in two topics (0-5 and 6-11); users 0-2 read topic 0, 3-5 topic 1.
LIBRARIES = [[0, 1, 2, 3], [1, 2, 4], [0, 3, 5], [6, 7, 8, 9], [7, 8, 10], [6, 9, 11]]
TAGS = [[0, 1], [0], [1, 2], [0, 2], [1], [0, 1]] + [[3, 4], [3], [4, 5], [3, 5], [4], [3, 4]]
CITATIONS = {0: [1], 2: [3], 6: [7], 8: [9]}
COLD = [4, 5, 10, 11]  # never in the cold split's training file


def counted(lists: list[list[int]]) -> str:
    return "".join(f"{len(ids)} {' '.join(map(str, ids))}".rstrip() + "\n" for ids in lists)


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A citeulike-a folder in miniature, in the real file formats."""
    (tmp_path / "users.dat").write_text(counted(LIBRARIES))
    (tmp_path / "item-tag.dat").write_text(counted(TAGS))
    (tmp_path / "citations.dat").write_text(counted([CITATIONS.get(i, []) for i in range(12)]))
    splits = tmp_path / "splits"
    splits.mkdir()
    for p in (1, 10):
        train = [library[:p] if p == 1 else library[:2] for library in LIBRARIES]
        test = [
            [i for i in library if i not in kept]
            for library, kept in zip(LIBRARIES, train, strict=True)
        ]
        (splits / f"cf-train-{p}-users.dat").write_text(counted(train))
        (splits / f"cf-test-{p}-users.dat").write_text(counted(test))
    cold = tmp_path / "dropoutnet_split" / "cold"
    cold.mkdir(parents=True)
    pairs = [(u, i) for u, library in enumerate(LIBRARIES) for i in library]
    as_csv = lambda rows: "".join(f"{u + 1},{i + 1},1\n" for u, i in rows)  # noqa: E731
    (cold / "train.csv").write_text(as_csv([(u, i) for u, i in pairs if i not in COLD]))
    (cold / "test.csv").write_text(as_csv([(u, i) for u, i in pairs if i in COLD]))
    (cold / "test_item_ids.csv").write_text("".join(f"{i + 1}\n" for i in COLD))
    return tmp_path


def test_counted_lists_become_rows(data_dir: Path) -> None:
    users = citeulike.read_lists(data_dir / "users.dat", n_columns=12)
    assert users.shape == (6, 12)
    np.testing.assert_array_equal(users[1].indices, [1, 2, 4])


@pytest.mark.parametrize("line", ["3 1 2\n", "x 1\n", "1 -4\n"])
def test_a_bad_counted_line_is_refused_with_its_place(tmp_path: Path, line: str) -> None:
    path = tmp_path / "users.dat"
    path.write_text("1 0\n" + line)
    with pytest.raises(ValueError, match=r"users\.dat:2"):
        citeulike.read_lists(path)


def test_dropoutnet_ids_are_one_based(data_dir: Path) -> None:
    users, papers = citeulike.read_pairs(data_dir / "dropoutnet_split" / "cold" / "train.csv")
    assert (users[0], papers[0]) == (0, 0)
    ids = citeulike.read_ids(data_dir / "dropoutnet_split" / "cold" / "test_item_ids.csv")
    np.testing.assert_array_equal(ids, COLD)


def test_a_zero_id_in_a_one_based_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("1,1,1\n0,3,1\n")
    with pytest.raises(ValueError, match=r"train\.csv:2.*1-based"):
        citeulike.read_pairs(path)


def test_citations_are_symmetric_and_a_paper_cites_itself(data_dir: Path) -> None:
    content = citeulike.load_content(data_dir)
    assert content.citations[1, 0] == content.citations[0, 1] == 1
    features = citeulike.content_features(content)
    # Papers 0 and 1 share tag 0 and the citation between them; 0 and 7 share nothing.
    similarity = (features @ features.T).toarray()
    assert similarity[0, 1] > 0 and similarity[0, 7] == 0
    np.testing.assert_allclose(np.diag(similarity), 1.0, rtol=1e-5)


def test_the_embedding_is_unit_rows_no_wider_than_the_data(data_dir: Path) -> None:
    embedding = citeulike.content_embedding(
        citeulike.content_features(citeulike.load_content(data_dir))
    )
    assert embedding.shape[0] == 12 and embedding.shape[1] <= 11
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("split", ["p1", "p10"])
def test_warm_protocols_rank_every_paper(data_dir: Path, split: str) -> None:
    data = citeulike.citeulike_data(data_dir, split)
    assert data.candidates is None
    np.testing.assert_array_equal(data.catalogue, np.arange(12))
    n_train = {"p1": 1, "p10": 2}[split]
    assert np.bincount(data.event_user).tolist() == [n_train] * 6
    assert data.test.nnz == sum(map(len, LIBRARIES)) - 6 * n_train


def test_the_cold_protocol_ranks_only_unseen_papers(data_dir: Path) -> None:
    data = citeulike.citeulike_data(data_dir, "cold")
    np.testing.assert_array_equal(data.candidates, COLD)
    assert not set(data.catalogue) & set(COLD)
    assert set(data.test.indices) <= set(COLD)


def test_a_cold_paper_in_training_is_refused(data_dir: Path) -> None:
    train = data_dir / "dropoutnet_split" / "cold" / "train.csv"
    train.write_text(train.read_text() + "1,5,1\n")  # paper 4 (1-based 5) is cold
    with pytest.raises(ValueError, match="cold papers occur in train.csv"):
        citeulike.citeulike_data(data_dir, "cold")


def test_an_unknown_split_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        citeulike.load_split(data_dir, "p5", 6, 12)


def test_bag_of_words_reads_word_counts(tmp_path: Path) -> None:
    path = tmp_path / "mult.dat"
    path.write_text("2 0:3 4:1\n1 2:2\n")
    words = citeulike.read_bag_of_words(path, n_words=5)
    np.testing.assert_array_equal(words.toarray(), [[3, 0, 0, 0, 1], [0, 0, 2, 0, 0]])


def test_the_three_protocols_run_and_report_every_model(data_dir: Path) -> None:
    reports = citeulike.run_citeulike(data_dir)
    assert [report["split"] for report in reports] == ["cold", "p1", "p10"]
    for report in reports:
        assert set(report["results"]) == {
            "hybrid",
            "content",
            "linear",
            "als",
            "lightfm",
            "popularity",
        }
        for values in report["results"].values():
            assert {"recall@50", "recall@100", "recall@300", "ndcg@10"} <= set(values)
            assert all(0.0 <= values[k] <= 1.0 for k in ("recall@50", "ndcg@10"))
    # Users 1, 2, 4 and 5 read a cold paper; everyone has test papers in p1 and p10.
    assert [report["n_users"] for report in reports] == [4, 6, 6]
    # Four cold papers, each user reads at most two of them: everything is in the top 50.
    assert reports[0]["results"]["hybrid"]["recall@50"] == 1.0
    assert reports[1]["blend"]["source"].startswith("fallback")


def test_the_real_cold_split_beats_dropoutnet() -> None:
    folder = SHARED_DATA / "citeulike-a"
    if not folder.exists():
        pytest.skip(f"{folder} is absent (../shared/data only sits beside the project in CI)")
    content = citeulike.load_content(folder)
    embeddings = citeulike.content_embedding(citeulike.content_features(content))
    data = citeulike.citeulike_data(folder, "cold", embeddings=embeddings, content=content)
    report = run_evaluation(data)
    assert report["n_users"] == 5410
    hybrid = report["results"]["hybrid"]
    assert hybrid["recall@100"] > 0.64  # DropoutNet's published cold-start recall@100
    for name, values in report["results"].items():
        if name != "hybrid":
            assert hybrid["recall@100"] > values["recall@100"], name
