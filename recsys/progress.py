"""Progress of long steps: the callback type the library reports through, and rich bars for it.

Library code (training, evaluation, the demo) takes a ``progress(stage, done, total)``
callback and never prints; a command line passes :func:`progress_bars`' callback (drawn on
stderr, so stdout keeps only the command's result) or :func:`no_progress` under ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as long steps advance (e.g. a rich progress bar)."""


def no_progress(stage: str, done: int, total: int) -> None:
    return None


@contextmanager
def progress_bars(console: Console) -> Iterator[Progress]:
    """Rich progress bars on ``console``, one per stage; yields ``update(stage, done, total)``."""
    bars = Bars(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update
