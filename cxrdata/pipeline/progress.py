"""Progress bars (one per stage, rich) on a terminal; silent when not a TTY or with --quiet."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class BuildProgress:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = not quiet and self.console.is_terminal
        self._progress = Progress(
            TextColumn("{task.description:>18}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self.console, disable=not self.enabled,
        )
        self._bars: dict[str, TaskID] = {}

    def start(self, config: str, total: int, stages: list[str]) -> None:
        """New bars for one config's stages (plus the writer)."""
        for bar in self._bars.values():
            self._progress.remove_task(bar)
        self._bars = {
            name: self._progress.add_task(f"{config}:{name}", total=total) for name in [*stages, "write"]
        }

    def advance(self, stage: str, n: int) -> None:
        if stage in self._bars:
            self._progress.advance(self._bars[stage], n)

    def __enter__(self) -> BuildProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.__exit__(exc_type, exc, tb)
