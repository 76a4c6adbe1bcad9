"""The worker process's BLAS threads: one per pool process unless the operator says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workers.app import BLAS_THREAD_VARIABLES

# Imports the worker's app first, as ``celery -A workers.app`` does, then numpy's BLAS.
_PROBE = """
import json, workers.app, numpy, threadpoolctl
print(json.dumps([p["num_threads"] for p in threadpoolctl.threadpool_info()
                  if p["user_api"] == "blas"]))
"""


def blas_threads(**env: str) -> list[int]:
    clean = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, check=True
    )
    threads: list[int] = json.loads(out.stdout)
    return threads


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS uses one thread anyway")
def test_a_worker_process_uses_one_blas_thread_by_default() -> None:
    threads = blas_threads()
    assert threads and set(threads) == {1}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to tell 2 from 1")
def test_the_operators_own_blas_setting_wins() -> None:
    assert set(blas_threads(OPENBLAS_NUM_THREADS="2")) == {2}
