"""The harvest task through a real worker, and its place on beat."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from recsys.db.models import HarvestSourceRow, PaperRow
from recsys.db.session import Database
from recsys.settings import Settings
from recsys.testing.sources import FakeOai, oai_records
from workers.app import make_celery
from workers.embedded import Embedded


def test_beat_asks_often_which_sources_are_due(settings: Settings) -> None:
    schedule = make_celery(settings.model_copy(update={"harvest_every_s": 120.0}))
    entry = schedule.conf.beat_schedule["harvest-sources"]

    assert (entry["task"], entry["schedule"]) == ("paperboy.harvest", 120.0)
    assert entry["kwargs"] == {"only_due": True}
    # An hourly harvest is still checked every 5 minutes: a fresh install's first harvest
    # does not wait an hour for beat's first tick.
    assert make_celery(settings).conf.beat_schedule["harvest-sources"]["schedule"] == 300.0


def _wait_for_run(db: Database, name: str, timeout_s: float = 60.0) -> HarvestSourceRow:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session() as s:
            row = s.get(HarvestSourceRow, name)
            if row is not None and row.last_status is not None:
                return row
        time.sleep(0.2)
    raise AssertionError(f"no harvest of {name} finished within {timeout_s:g} s")


def test_two_harvest_tasks_at_once_store_each_paper_once(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    with FakeOai(oai_records(1200, start=_today_minus(2)), page_size=400) as oai:
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[source]]\nname = "arxiv-cs"\nkind = "arxiv-oai"\nurl = "{oai.base_url}"\n'
            'sets = ["cs"]\nmin_interval_s = 0\n'
        )
        with Embedded(settings.model_copy(update={"sources": sources}), concurrency=2) as rt:
            assert rt.celery is not None
            rt.celery.send_task("paperboy.harvest")
            rt.celery.send_task("paperboy.harvest")
            _wait_for_run(db, "arxiv-cs")
            time.sleep(1.0)  # the other task either found the source busy or ran after it
            row = _wait_for_run(db, "arxiv-cs")

    assert row.last_status == "ok" and row.lease_owner is None
    assert row.last_result is not None and row.last_result["read"] == 1200
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(PaperRow)) == 1200
    assert row.watermark == oai_records(1200, start=_today_minus(2))[-1].datestamp


def _today_minus(days: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days)
