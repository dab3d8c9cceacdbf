"""A rich progress bar counting simulated shipments."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ChunkProgress:
    """Shows shipments generated so far; ``update(done, total)`` matches the chunk callback."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]simulating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("shipments"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task("simulate", total=total)
        self._progress.start()

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()


def chunk_progress(total: int) -> ChunkProgress:
    return ChunkProgress(total)
