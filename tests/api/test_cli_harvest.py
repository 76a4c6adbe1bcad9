"""``paperboy sources list`` and ``paperboy harvest`` against the source stand-ins."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from recsys.db.session import Database
from recsys.testing.sources import FakeFeed, FakeOai, FeedItem, arxiv_rss, broken, oai_records

runner = CliRunner()


def _sources_file(tmp_path: Path, oai_url: str, feed_url: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(f"""
[[source]]
name = "arxiv-cs"
kind = "arxiv-oai"
url = "{oai_url}"
sets = ["cs"]
min_interval_s = 0

[[source]]
name = "cs-lg-daily"
kind = "rss"
url = "{feed_url}"
""")
    return path


def _env(db: Database, tmp_path: Path, sources: Path | None) -> dict[str, str]:
    env = {"PAPERBOY_DATABASE_URL": db.url, "PAPERBOY_DATA_DIR": str(tmp_path / "var")}
    if sources is not None:
        env["PAPERBOY_SOURCES"] = str(sources)
    return env


def test_harvest_runs_every_source_and_sources_list_shows_their_state(
    db: Database, tmp_path: Path
) -> None:
    feed = arxiv_rss([FeedItem("2611.00001", "Also in OAI"), FeedItem("2611.09999", "Only here")])
    with FakeOai(oai_records(1500), page_size=1000) as oai, FakeFeed(feed) as rss:
        env = _env(db, tmp_path, _sources_file(tmp_path, oai.base_url, rss.base_url))
        before = runner.invoke(app, ["sources", "list", "--json"], env=env)
        # --since: the stand-in's records are from November 2026, the clock is real.
        result = runner.invoke(app, ["harvest", "--since", "2026-11-01", "--json"], env=env)
        after = runner.invoke(app, ["sources", "list", "--json"], env=env)

    assert result.exit_code == 0, result.output
    reports = json.loads(result.stdout)
    assert reports["arxiv-cs"] == {
        "kind": "arxiv-oai", "status": "ok", "read": 1500, "new": 1500, "updated": 0,
        "skipped": 0, "errors": [], "watermark": "2026-11-02",
    }  # fmt: skip
    # The feed's first item is a paper OAI brought already: one row, updated from the feed.
    assert {k: reports["cs-lg-daily"][k] for k in ("read", "new", "updated")} == {
        "read": 2, "new": 1, "updated": 1,
    }  # fmt: skip
    assert [s["state"]["watermark"] for s in json.loads(before.stdout)["sources"]] == [None, None]
    listed = json.loads(after.stdout)["sources"]
    assert [(s["name"], s["kind"], s["state"]["last_status"]) for s in listed] == [
        ("arxiv-cs", "arxiv-oai", "ok"), ("cs-lg-daily", "rss", "ok"),
    ]  # fmt: skip
    assert listed[0]["state"]["watermark"] == "2026-11-02"
    assert listed[0]["state"]["last_result"]["new"] == 1500
    assert listed[0]["sets"] == ["cs"] and listed[0]["url"] == oai.base_url


def test_a_failing_source_exits_1_naming_it_and_the_others_still_run(
    db: Database, tmp_path: Path
) -> None:
    with FakeOai(oai_records(5)) as oai, FakeFeed(arxiv_rss([FeedItem("2611.1", "T")])) as rss:
        env = _env(db, tmp_path, _sources_file(tmp_path, oai.base_url, rss.base_url))
        oai.fail_next(broken())
        result = runner.invoke(app, ["harvest"], env=env)

    assert result.exit_code == 1
    assert "arxiv-cs: failed, read 0" in result.stdout
    assert "cs-lg-daily: ok, read 1, new 1" in result.stdout
    assert f"error: arxiv-cs: GET {oai.base_url}?verb=ListRecords" in result.stderr
    assert "malformed XML" in result.stderr


def test_harvest_runs_only_the_named_sources_from_since(db: Database, tmp_path: Path) -> None:
    with FakeOai(oai_records(5)) as oai, FakeFeed(arxiv_rss([])) as rss:
        env = _env(db, tmp_path, _sources_file(tmp_path, oai.base_url, rss.base_url))
        result = runner.invoke(app, ["harvest", "arxiv-cs", "--since", "2026-06-01", "--json"],
                               env=env)  # fmt: skip

    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)) == ["arxiv-cs"]
    assert oai.params()[0]["from"] == "2026-06-01"
    assert rss.requests == []


def test_unset_sources_unknown_names_and_bad_files_exit_2(db: Database, tmp_path: Path) -> None:
    unset = runner.invoke(app, ["harvest"], env=_env(db, tmp_path, None))
    bad = tmp_path / "bad.toml"
    bad.write_text('[[source]]\nname = "x"\nkind = "arxiv-oai"\n')
    invalid = runner.invoke(app, ["sources", "list"], env=_env(db, tmp_path, bad))
    good = _sources_file(tmp_path, "http://127.0.0.1:9/oai", "http://127.0.0.1:9/feed")
    unknown = runner.invoke(app, ["harvest", "nope"], env=_env(db, tmp_path, good))

    assert unset.exit_code == invalid.exit_code == unknown.exit_code == 2
    assert "PAPERBOY_SOURCES is not set" in unset.stderr
    assert f"{bad}: source 'x' (#1): field 'sets': Field required" in invalid.stderr
    assert "no source named 'nope' (known: arxiv-cs, cs-lg-daily)" in unknown.stderr
