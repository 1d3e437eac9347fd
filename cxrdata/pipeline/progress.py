"""Progress bars (one per stage, rich) on a terminal; silent when not a TTY or with --quiet.

Each config gets a heading line (its whole name, the records and tasks, how many workers start: spawning
them takes seconds), then one bar per stage with records done, rate, elapsed and remaining time; the
``write`` bar also counts the records rejected so far. Bars carry only the stage name, so a long config
name is never cut to fit 80 columns.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from cxrdata.pipeline.task_runner import REJECTED


class RateColumn(ProgressColumn):
    """Records per second, from rich's moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("    -/s" if speed is None else f"{speed:,.0f}/s".rjust(7), style="progress.data.speed")


class BuildProgress:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.enabled = not quiet and self.console.is_terminal
        self._progress = Progress(
            TextColumn("  {task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=8)),
            MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[rejected]}", table_column=Column(no_wrap=True)),
            console=self.console, disable=not self.enabled, expand=True,
        )
        self._bars: dict[str, TaskID] = {}
        self._rejected = 0

    def start(self, config: str, total: int, stages: list[str], tasks: int = 1, workers: int = 1) -> None:
        """A heading line and new bars for one config's stages (plus the writer)."""
        for bar in self._bars.values():
            self._progress.remove_task(bar)
        if not self.quiet:
            where = f"starting {workers} workers" if workers > 1 else "in this process"
            self._progress.console.print(f"{config}: {total:,} records in {tasks} task{'s' * (tasks != 1)}, {where}",
                                         soft_wrap=True, highlight=False)
        width = max(len(s) for s in [*stages, "write"])
        self._rejected = 0
        self._bars = {
            name: self._progress.add_task(name.ljust(width), total=total, rejected="") for name in [*stages, "write"]
        }
        self._show_rejected()

    def advance(self, stage: str, n: int) -> None:
        if stage == REJECTED:
            self._rejected += n
            self._show_rejected()
        elif stage in self._bars:
            self._progress.advance(self._bars[stage], n)

    def _show_rejected(self) -> None:
        if "write" in self._bars:
            self._progress.update(self._bars["write"], rejected=f"{self._rejected:,} rejected")

    def bars(self) -> RenderableType:
        """What the bars show now (the live display draws this)."""
        return self._progress.get_renderable()

    def __enter__(self) -> BuildProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.__exit__(exc_type, exc, tb)
