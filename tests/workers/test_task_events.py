"""Task events reach the broker, so Flower (or any event consumer) sees each task's history."""

from __future__ import annotations

import threading
import time
from typing import Any

from workers.embedded import Embedded

WANTED = {"task-sent", "task-received", "task-started", "task-succeeded"}


def test_a_task_sends_its_sent_received_started_and_succeeded_events(runtime: Embedded) -> None:
    celery = runtime.celery
    assert celery is not None
    seen: dict[str, dict[str, Any]] = {}
    ready = threading.Event()

    def record(event: dict[str, Any]) -> None:
        if event.get("type", "").startswith("task-"):
            seen[event["type"]] = event

    with celery.connection_for_read() as conn:
        receiver = celery.events.Receiver(conn, handlers={"*": record})
        consumer = threading.Thread(
            target=lambda: (ready.set(), receiver.capture(limit=None, timeout=60)), daemon=True
        )
        consumer.start()
        ready.wait()
        # The receiver's queue is bound once capture has started consuming; events sent
        # before that are not queued for it, so give it a moment before enqueueing.
        time.sleep(1.0)
        result = celery.send_task("paperboy.plan")
        for _ in range(300):
            if seen.keys() >= WANTED:
                break
            time.sleep(0.1)
        receiver.should_stop = True

    assert seen.keys() >= WANTED, sorted(seen)
    assert seen["task-succeeded"]["uuid"] == result.id
    assert seen["task-sent"]["name"] == "paperboy.plan"
