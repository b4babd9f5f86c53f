"""A progress bar on stderr for long operations (imports, transfers), drawn by rich.

Shown only when stderr is a terminal and the caller did not ask for quiet; rich is imported
only then, so commands that show no bar pay nothing for it. Safe to update from several
threads (transfers report from their workers).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = ["Bar", "make_bar"]


class Bar:
    """One task's bar: ``update(done, total)`` with absolute figures, or ``advance(n)``."""

    def __init__(self, description: str, *, unit: str, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
        if unit == "bytes":
            columns += [DownloadColumn(binary_units=True), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(unit)]
        columns.append(TimeRemainingColumn())
        self._lock = threading.Lock()
        self._progress = Progress(*columns, console=Console(file=sys.stderr), transient=False)
        self._task = self._progress.add_task(description, total=total)
        self._done = 0
        self._total = total
        self._progress.start()

    def update(self, done: int, total: int | None = None) -> None:
        with self._lock:
            self._done = done
            if total is not None:
                self._total = total
            if self._total is not None and done > self._total:
                self._total = done  # an estimate fell short
            self._progress.update(self._task, completed=done, total=self._total)

    def advance(self, n: int = 1) -> None:
        self.update(self._done + n)

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def close(self) -> None:
        with self._lock:
            self._progress.stop()


def make_bar(description: str, *, unit: str = "bytes", total: int | None = None,
             enabled: bool = True) -> Bar | None:
    """A :class:`Bar` when ``enabled`` and stderr is a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        return Bar(description, unit=unit, total=total)
    except ImportError:  # rich missing: no bar, the work goes on
        return None
