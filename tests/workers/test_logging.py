"""The worker logs through recsys.logs: JSON lines on request, INFO kept, each task named."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from recsys.db.session import Database
from recsys.settings import Settings
from workers.embedded import Embedded


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_tasks_own_log_line_is_json_and_names_the_task(settings: Settings, db: Database) -> None:
    settings = settings.model_copy(update={"log_format": "json", "log_level": "INFO"})
    with Embedded(settings, concurrency=1) as runtime:
        assert runtime.celery is not None
        # No model is trained, so the score task logs its warning and returns.
        task_id = runtime.celery.send_task("paperboy.score", args=[[1, 2, 3]]).id
        log = Path(settings.data_dir) / "logs" / "worker.log"
        for _ in range(300):
            mine = [x for x in _json_lines(log) if x.get("task_id") == task_id]
            if any(x["logger"] == "workers.tasks" for x in mine):
                break
            time.sleep(0.1)

    [line] = [x for x in mine if x["logger"] == "workers.tasks"]
    assert line["level"] == "WARNING" and line["task"] == "paperboy.score"
    assert line["message"].startswith("no active model: 3 digests stay planned")
    # INFO is written too (it was WARNING): Celery's own "received" line for the same task.
    assert any(x["level"] == "INFO" and task_id in x["message"] for x in _json_lines(log))


def test_the_worker_and_beat_start_at_the_configured_level(settings: Settings) -> None:
    runtime = Embedded(settings.model_copy(update={"log_level": "DEBUG"}))

    assert "--loglevel=DEBUG" in runtime._worker_argv()
    assert "--loglevel=DEBUG" in runtime._beat_argv()
