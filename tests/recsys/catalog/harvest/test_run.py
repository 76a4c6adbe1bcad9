"""Harvest runs into the database: counts, watermarks, failures, leases, every kind."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from recsys.catalog.harvest import state
from recsys.catalog.harvest.config import ArxivApiSource, ArxivOaiSource, BiorxivSource, RssSource
from recsys.catalog.harvest.fetch import Timing
from recsys.catalog.harvest.run import (
    RunOptions,
    due_sources,
    harvest,
    harvest_source,
    select_sources,
)
from recsys.db.models import HarvestSourceRow, PaperRow
from recsys.db.session import Database
from recsys.testing.arxiv import FakeArxiv, atom_entry, atom_feed
from recsys.testing.sources import (
    FakeBiorxiv,
    FakeFeed,
    FakeOai,
    FeedItem,
    OaiRecord,
    arxiv_rss,
    biorxiv_item,
    broken,
    oai_records,
)
from tests.conftest import NOW


def _options(timing: Timing, **changes: object) -> RunOptions:
    return replace(RunOptions(now=NOW, timing=timing, owner="test-run"), **changes)  # type: ignore[arg-type]


def _oai(url: str) -> ArxivOaiSource:
    return ArxivOaiSource(name="arxiv-cs", kind="arxiv-oai", url=url, sets=["cs"], first_days=30)


def _papers(db: Database) -> list[PaperRow]:
    with db.session() as s:
        return list(s.scalars(select(PaperRow).order_by(PaperRow.arxiv_id)))


def _row(db: Database, name: str) -> HarvestSourceRow:
    with db.session() as s:
        row = s.get(HarvestSourceRow, name)
        assert row is not None
        return row


def test_a_first_run_stores_every_record_and_sets_the_watermark(
    db: Database, timing: Timing
) -> None:
    with FakeOai(oai_records(2500), page_size=1000) as oai:
        (report,) = harvest(db, [_oai(oai.base_url)], _options(timing))

    assert (report.status, report.read, report.new, report.updated, report.skipped) == (
        "ok", 2500, 2500, 0, 0,
    )  # fmt: skip
    assert report.errors == [] and len(report.new_ids) == 2500
    assert oai.params()[0]["from"] == (NOW.date() - timedelta(days=30)).isoformat()
    assert report.watermark == "2026-11-03"  # the newest datestamp served
    row = _row(db, "arxiv-cs")
    assert (row.watermark, row.last_status, row.lease_owner, row.lease_until) == (
        "2026-11-03", "ok", None, None,
    )  # fmt: skip
    assert row.last_result is not None and row.last_result["new"] == 2500
    assert len(_papers(db)) == 2500


def test_the_next_run_starts_from_the_watermark_and_a_new_version_updates_the_paper(
    db: Database, timing: Timing
) -> None:
    records = [OaiRecord("2611.00001", "First title", datestamp="2026-11-19"),
               OaiRecord("2611.00002", "Other", datestamp="2026-11-19")]  # fmt: skip
    with FakeOai(records) as oai:
        harvest(db, [_oai(oai.base_url)], _options(timing))
        oai.records = [replace(records[0], title="Revised title", abstract="v2 abstract",
                               datestamp="2026-11-20", updated="2026-11-20")]  # fmt: skip
        (report,) = harvest(db, [_oai(oai.base_url)], _options(timing))

    assert oai.params()[1]["from"] == "2026-11-19"
    assert (report.read, report.new, report.updated) == (1, 0, 1)
    first, _ = _papers(db)
    assert (first.arxiv_id, first.title, first.abstract) == (
        "2611.00001",
        "Revised title",
        "v2 abstract",
    )
    assert first.updated is not None and first.updated.date() == date(2026, 11, 20)
    assert report.watermark == "2026-11-20"


def test_bad_records_are_reported_and_the_rest_stored(db: Database, timing: Timing) -> None:
    records = [OaiRecord("2611.00001", "Good"), OaiRecord("2611.00002", "   "),
               OaiRecord("2611.00003", "Gone", deleted=True)]  # fmt: skip
    with FakeOai(records) as oai:
        (report,) = harvest(db, [_oai(oai.base_url)], _options(timing))

    assert (report.status, report.read, report.new, report.skipped) == ("ok", 3, 1, 1)
    assert report.errors == ["arxiv-cs: oai:arXiv.org:2611.00002: 2611.00002 has no <title>"]


def test_a_broken_page_fails_the_run_and_the_next_resumes_from_the_last_good_watermark(
    db: Database, timing: Timing
) -> None:
    with FakeOai(oai_records(2500), page_size=1000) as oai:
        harvest(db, [_oai(oai.base_url)], _options(timing))  # watermark 2026-11-03
        oai.records = oai_records(2500, start=date(2026, 11, 3))  # more arrived since
        oai.fail_once(broken(), when=lambda params: "resumptionToken" in params)
        (failed,) = harvest(db, [_oai(oai.base_url)], _options(timing))
        (retried,) = harvest(db, [_oai(oai.base_url)], _options(timing))

    assert failed.status == "failed"
    assert failed.errors[-1].startswith(f"arxiv-cs: GET {oai.base_url}?verb=ListRecords")
    assert "resumptionToken=" in failed.errors[-1] and "malformed XML" in failed.errors[-1]
    assert (failed.read, failed.watermark) == (1000, None)  # the whole first page, no more
    starts = [p["from"] for p in oai.params() if "from" in p]
    assert starts == ["2026-10-22", "2026-11-03", "2026-11-03"]  # the retry: the old mark
    assert (retried.status, retried.read, retried.watermark) == ("ok", 2500, "2026-11-05")
    assert retried.new + retried.skipped + retried.updated == 2500
    assert _row(db, "arxiv-cs").last_status == "ok"


def test_a_failed_run_keeps_the_watermark_and_records_the_error(
    db: Database, timing: Timing
) -> None:
    with FakeOai(oai_records(5)) as oai:
        harvest(db, [_oai(oai.base_url)], _options(timing))
        oai.fail_next(broken())
        (report,) = harvest(db, [_oai(oai.base_url)], _options(timing))

    row = _row(db, "arxiv-cs")
    assert report.status == "failed"
    assert (row.watermark, row.last_status, row.lease_owner) == ("2026-11-01", "failed", None)
    assert row.last_error is not None and "malformed XML" in row.last_error


def test_a_source_another_run_holds_is_left_alone(db: Database, timing: Timing) -> None:
    source_lease = timedelta(minutes=30)
    with db.session() as s:
        assert state.acquire(s, "arxiv-cs", "arxiv-oai", "other-worker", NOW, source_lease)
    with FakeOai(oai_records(5)) as oai:
        (busy,) = harvest(db, [_oai(oai.base_url)], _options(timing))
        # Once the other run's lease has expired (its worker died), the source is free again.
        later = _options(timing, now=NOW + source_lease + timedelta(seconds=1))
        (taken,) = harvest(db, [_oai(oai.base_url)], later)

    assert busy.status == "busy" and (busy.read, busy.new) == (0, 0)
    assert taken.status == "ok" and taken.new == 5
    assert len([p for p in oai.params() if "from" in p]) == 1


def test_since_overrides_the_watermark(db: Database, timing: Timing) -> None:
    with FakeOai(oai_records(5)) as oai:
        harvest_source(db, _oai(oai.base_url), _options(timing, since=date(2026, 6, 1)))

    assert oai.params()[0]["from"] == "2026-06-01"


def test_a_feed_and_biorxiv_are_harvested_into_the_same_catalogue(
    db: Database, timing: Timing
) -> None:
    feed_items = [FeedItem("2611.00001", "From the feed", "new"),
                  FeedItem("2611.00002", "A replacement", "replace", version=2)]  # fmt: skip
    items = [biorxiv_item(1, day="2026-11-20"), biorxiv_item(2, day="2026-11-20", version=2)]
    with FakeFeed(arxiv_rss(feed_items)) as feed, FakeBiorxiv(items) as bio:
        sources = [RssSource(name="lg", kind="rss", url=feed.base_url),
                   BiorxivSource(name="bio", kind="biorxiv", url=bio.base_url)]  # fmt: skip
        rss, biorxiv = harvest(db, sources, _options(timing))

    assert (rss.status, rss.new, biorxiv.status, biorxiv.new) == ("ok", 2, "ok", 2)
    assert biorxiv.watermark == NOW.date().isoformat()
    assert bio.paths()[0] == f"/details/biorxiv/2026-11-18/{NOW.date()}/0/json"  # first_days=3
    titles = {p.title for p in _papers(db)}
    assert titles == {"From the feed", "A replacement", "Preprint 1 about cells",
                      "Preprint 2 about cells"}  # fmt: skip


def test_select_sources_names_an_unknown_one(timing: Timing) -> None:
    sources = [RssSource(name="a", kind="rss", url="u"), RssSource(name="b", kind="rss", url="u")]

    assert [s.name for s in select_sources(sources, ["b"])] == ["b"]
    assert select_sources(sources, []) == sources
    with pytest.raises(ValueError, match=r"^no source named 'c' \(known: a, b\)$"):
        select_sources(sources, ["c"])


def test_a_run_that_lost_its_lease_stops_without_writing_the_page(
    db: Database, timing: Timing
) -> None:
    def steal_the_lease(message: str) -> None:
        # After the first page, another run takes the source (as if our lease had expired).
        with db.session() as s:
            s.execute(
                HarvestSourceRow.__table__.update()
                .where(HarvestSourceRow.name == "arxiv-cs")
                .values(lease_owner="other-run")
            )

    with FakeOai(oai_records(2500), page_size=1000) as oai:
        (report,) = harvest(db, [_oai(oai.base_url)], _options(timing, notify=steal_the_lease))

    assert report.status == "failed"
    assert report.errors == [
        "arxiv-cs: upsert: lost the source's lease to another run (a run longer than the lease?)"
    ]
    assert (report.read, len(_papers(db))) == (1000, 1000)  # the second page rolled back
    assert _row(db, "arxiv-cs").lease_owner == "other-run"  # its state is the other run's


def test_an_unexpected_error_frees_the_source_and_is_recorded(
    db: Database, timing: Timing, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_upsert(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("recsys.catalog.harvest.run.upsert_papers", broken_upsert)
    with FakeOai(oai_records(5)) as oai, pytest.raises(RuntimeError, match="disk full"):
        harvest(db, [_oai(oai.base_url)], _options(timing))

    row = _row(db, "arxiv-cs")
    assert (row.last_status, row.lease_owner, row.watermark) == ("failed", None, None)
    assert row.last_error == "arxiv-cs: RuntimeError: disk full"


def test_an_arxiv_api_run_stores_the_newest_papers_and_keeps_their_date(
    db: Database, timing: Timing
) -> None:
    entries = [
        atom_entry("2611.00001", "Newest", published="2026-11-20T10:00:00Z", doi="10.1000/A"),
        atom_entry("2611.00002", "Newer", published="2026-11-19T10:00:00Z"),
        atom_entry("2610.00003", "Too old", published="2026-10-01T10:00:00Z"),
    ]
    with FakeArxiv() as arxiv:
        arxiv.serve(atom_feed(*entries))
        source = ArxivApiSource(name="api", kind="arxiv-api", url=arxiv.base_url,
                                query="cat:cs.LG", first_days=7)  # fmt: skip
        (report,) = harvest(db, [source], _options(timing))

    assert (report.status, report.read, report.new) == ("ok", 2, 2)
    assert report.watermark == "2026-11-20T10:00:00+00:00"
    assert [(p.arxiv_id, p.doi, p.source) for p in _papers(db)] == [
        ("2611.00001", "10.1000/a", "api"), ("2611.00002", None, "api"),
    ]  # fmt: skip
    assert arxiv.params()[0]["search_query"] == "cat:cs.LG"


def test_a_source_is_due_when_never_run_or_its_last_run_started_long_enough_ago() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    sources = [
        ArxivOaiSource(name=n, kind="arxiv-oai", sets=["cs"]) for n in ("new", "old", "recent")
    ]
    started = {"old": now - timedelta(hours=1), "recent": now - timedelta(minutes=59)}

    due = due_sources(sources, started, now, timedelta(hours=1))

    assert [s.name for s in due] == ["new", "old"]


HOSTILE_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>A journal</title><link>https://journal.example/</link>
<description>hand-made</description>
<item><title>A paper whose link is script</title><link>javascript:alert(document.domain)//</link>
<guid>https://doi.org/10.1234/xss</guid><description>Fine text.</description></item>
<item><title>A paper with a control character \x07 in its title</title>
<link>https://journal.example/ctl</link><guid>https://doi.org/10.1234/ctl</guid></item>
<item><title>A plain paper</title><link>https://journal.example/plain</link>
<guid>https://doi.org/10.1234/plain</guid></item>
</channel></rss>"""


def test_harvested_papers_get_the_checks_file_papers_get(db: Database, timing: Timing) -> None:
    with FakeFeed(HOSTILE_FEED) as feed:
        [report] = harvest(
            db, [RssSource(name="j", kind="rss", url=feed.base_url)], _options(timing)
        )

    stored = {p.title: p.url for p in _papers(db)}
    # A non-http(s) link is dropped and the paper kept, as for files (it then gets the
    # catalogue's own fallback page); a title that cannot be stored as text is skipped and
    # reported with the field and the reason.
    assert set(stored) == {"A paper whose link is script", "A plain paper"}
    assert stored["A plain paper"] == "https://journal.example/plain"
    assert stored["A paper whose link is script"].startswith("https://")
    assert "javascript" not in stored["A paper whose link is script"]
    assert (report.new, report.read) == (2, 3)
    [error] = report.errors
    assert "field 'title'" in error and "control character" in error, error
