"""``paperboy run``: the API, a worker and beat in one command, for one machine.

The API is served in this process; the worker, beat and (in the embedded mode) Redis are
children started by :class:`workers.embedded.Embedded`, stopped when the API stops. If a
child dies, the API is stopped too and the command exits non-zero, so a supervisor
(systemd, Docker's restart policy) restarts the whole set rather than running half of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn

from api.app import create_app
from recsys.db.session import Database
from recsys.logs import logging_config
from recsys.settings import Settings
from workers.embedded import Embedded

WATCH_EVERY_S = 1.0


def run_service(
    settings: Settings, host: str, port: int, *, concurrency: int, log: Callable[[str], None]
) -> int:
    """Migrate, start the children, serve until stopped; 0 on a requested stop, 1 if a child died.

    A SIGTERM or SIGINT makes uvicorn shut down gracefully and then re-raise the signal,
    which the caller's :func:`workers.embedded.stop_on_signals` turns into an exception that
    unwinds through ``Embedded`` and stops the children.
    """
    Database(settings.sqlalchemy_url).migrate()
    with Embedded(settings, concurrency=concurrency, beat=True) as runtime:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(runtime.settings),
                host=host,
                port=port,
                log_level=settings.log_level.lower(),
                log_config=logging_config(settings.log_level, settings.log_format),
            )
        )
        died = threading.Event()
        watcher = threading.Thread(target=_watch, args=(runtime, server, died), daemon=True)
        watcher.start()
        log(f"serving on http://{host}:{port}; worker and beat on {runtime.settings.broker_url}")
        server.run()
        if died.is_set():
            log("a worker, beat or Redis process exited; stopped the API")
            return 1
    return 0


def _watch(runtime: Embedded, server: uvicorn.Server, died: threading.Event) -> None:
    """Stop the server when a child process exits on its own."""
    while not server.should_exit:
        if not runtime.alive():
            died.set()
            server.should_exit = True
            return
        time.sleep(WATCH_EVERY_S)
