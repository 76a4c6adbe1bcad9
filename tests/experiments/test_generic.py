"""The generic-format evaluation: readers, the protocol, the end-to-end run and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from experiments import generic
from experiments.cli import experiment_app

TOPICS = [
    ("neural", "network", "gradient", "training", "layers", "transformer"),
    ("protein", "gene", "expression", "cell", "sequencing", "genome"),
    ("galaxy", "star", "cosmology", "telescope", "redshift", "supernova"),
]
PAPERS_PER_TOPIC = 12
READERS_PER_TOPIC = 4


def paper_record(topic: int, j: int, rng: np.random.Generator) -> dict[str, object]:
    words = rng.choice(TOPICS[topic], 12)
    return {
        "id": f"p{topic}-{j}",
        "title": " ".join(words[:4]),
        "abstract": " ".join(words[4:]) + " we study results",
        "tags": [TOPICS[topic][0]],
        "authors": [f"Author {topic}{j % 3}"],
        "published": f"2024-01-{1 + j:02d}",
    }


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """Three topics; each reader reads the first papers of one topic and is tested on the rest.

    Papers 0-5 of a topic are read in training; test papers are 6-11, which nobody read in
    training, so they are "unseen" as well.
    """
    rng = np.random.default_rng(0)
    records = [paper_record(t, j, rng) for t in range(3) for j in range(PAPERS_PER_TOPIC)]
    papers = tmp_path / "papers.jsonl"
    papers.write_text("".join(json.dumps(record) + "\n" for record in records))
    train, test = ["user_id,paper_id,timestamp,kind"], ["user_id,paper_id"]
    for t in range(3):
        for r in range(READERS_PER_TOPIC):
            user = f"u{t}-{r}"
            for j in rng.choice(6, 4, replace=False):
                train.append(f"{user},p{t}-{j},2024-02-{1 + j:02d}T08:00:00Z,click")
            train.append(f"{user},p{(t + 1) % 3}-0,2024-02-10T08:00:00Z,less_like_this")
            for j in rng.choice(np.arange(6, 12), 3, replace=False):
                test.append(f"{user},p{t}-{j}")
    paths = {"papers": papers, "train": tmp_path / "train.csv", "test": tmp_path / "test.csv"}
    paths["train"].write_text("\n".join(train) + "\n")
    paths["test"].write_text("\n".join(test) + "\n")
    return paths


def test_papers_are_read_with_their_fields(files: dict[str, Path]) -> None:
    papers = generic.read_papers(files["papers"])
    assert len(papers.ids) == 3 * PAPERS_PER_TOPIC
    assert papers.fields["tags"][0] == ["neural"]
    assert papers.published[0] == pytest.approx(1704067200.0)  # 2024-01-01 UTC


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"title": "no id"}', "'id'"),
        ('{"id": 1, "title": "t", "tags": "not a list"}', "list of strings"),
        ('{"id": 1, "title": "t", "published": "last tuesday"}', "ISO 8601"),
        ('{"id": "p0-0", "title": "t"}', "duplicate"),
    ],
)
def test_a_bad_paper_line_is_refused_with_its_place(
    files: dict[str, Path], line: str, message: str
) -> None:
    path = files["papers"]
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(ValueError, match=message):
        generic.read_papers(path)


def test_interactions_read_kinds_and_times(files: dict[str, Path]) -> None:
    known = generic.read_papers(files["papers"]).index()
    train = generic.read_interactions(files["train"], known)
    assert set(train.weights) == {1.0, -1.0}
    assert not np.isnan(train.times).any()
    test = generic.read_interactions(files["test"], known)
    assert np.isnan(test.times).all() and (test.weights == 1.0).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [("user,paper\nu,p0-0\n", "header"), ("user_id,paper_id\nu,nope\n", "not in the papers")],
)
def test_bad_interactions_are_refused(
    files: dict[str, Path], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        generic.read_interactions(path, generic.read_papers(files["papers"]).index())


def load(files: dict[str, Path], candidates: str) -> generic.EvalData:
    papers = generic.read_papers(files["papers"])
    known = papers.index()
    train = generic.read_interactions(files["train"], known)
    test = generic.read_interactions(files["test"], known)
    return generic.generic_data(papers, train, test, candidates)


def test_unseen_ranks_only_papers_absent_from_training(files: dict[str, Path]) -> None:
    data = load(files, "unseen")
    assert data.candidates is not None
    assert not set(data.candidates) & set(data.event_paper)
    assert set(data.catalogue) == set(data.event_paper)
    assert load(files, "all").candidates is None


def test_ages_are_measured_from_the_latest_time(files: dict[str, Path]) -> None:
    data = load(files, "all")
    assert data.event_age_days.min() == 0.0
    assert data.paper_age_days.max() > data.paper_age_days.min() > 0
    assert data.features is not None and data.features.shape[0] == data.n_papers


def test_an_unknown_candidate_mode_is_refused(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="candidates"):
        load(files, "some")


@pytest.mark.parametrize("candidates", ["all", "unseen"])
def test_the_evaluation_finds_each_readers_topic(files: dict[str, Path], candidates: str) -> None:
    report = generic.run_generic(files["papers"], files["train"], files["test"], candidates)
    assert report["split"] == candidates
    assert report["n_users"] == 3 * READERS_PER_TOPIC
    assert set(report["results"]) == {"hybrid", "content", "linear", "als", "lightfm", "popularity"}
    # A reader's 3 test papers are among the 6 unread papers of their topic: a model that
    # knows the topic finds them all in its top 50 of 36 (or 18 unseen) candidates.
    assert report["results"]["hybrid"]["recall@50"] == 1.0
    assert report["results"]["content"]["ndcg@10"] > 0.5


def test_the_cli_prints_one_json_object(files: dict[str, Path]) -> None:
    args = ["evaluate", "--papers", str(files["papers"]), "--train", str(files["train"])]
    args += ["--test", str(files["test"]), "--candidates", "unseen", "--json"]
    result = CliRunner().invoke(experiment_app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"split", "results", "n_users"} <= set(report)
    assert report["results"]["hybrid"]["recall@100"] == 1.0


def test_the_cli_reports_bad_input_without_a_traceback(files: dict[str, Path]) -> None:
    files["test"].write_text("user_id,paper_id\nu0-0,missing\n")
    args = ["evaluate", "--papers", str(files["papers"]), "--train", str(files["train"])]
    result = CliRunner().invoke(experiment_app, [*args, "--test", str(files["test"])])
    assert result.exit_code == 2
    assert "not in the papers file" in result.output
