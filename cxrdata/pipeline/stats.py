"""Per-task statistics, merged into the manifest. read = written + rejected holds per split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SplitCounts:
    read: int = 0
    written: int = 0
    rejected: int = 0

    def add(self, other: SplitCounts) -> None:
        self.read += other.read
        self.written += other.written
        self.rejected += other.rejected


@dataclass(frozen=True)
class WrittenFile:
    """A file a task wrote (path relative to OUT in :attr:`TaskStats.files`): checked on resume."""

    rows: int
    bytes: int


@dataclass
class StageTiming:
    records_in: int = 0
    records_out: int = 0
    seconds: float = 0.0


@dataclass
class TaskStats:
    """What one task did; stored in its completion marker."""

    config: str
    task: str  # the task's name, ``{split}-{i:05d}``
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    stages: dict[str, StageTiming] = field(default_factory=dict)
    bytes_written: int = 0
    seconds: float = 0.0
    files: dict[str, WrittenFile] = field(default_factory=dict)
    fanned_out: int = 0  # records a stage added by fanning one record out into several (counted in read)

    def split(self, name: str) -> SplitCounts:
        return self.splits.setdefault(name, SplitCounts())

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "task": self.task,
            "splits": {k: vars(v) for k, v in sorted(self.splits.items())},
            "reasons": dict(sorted(self.reasons.items())),
            "notes": dict(sorted(self.notes.items())),
            "stages": {k: vars(v) for k, v in self.stages.items()},
            "bytes_written": self.bytes_written,
            "seconds": self.seconds,
            "files": {k: vars(v) for k, v in sorted(self.files.items())},
            "fanned_out": self.fanned_out,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskStats:
        return cls(
            config=data["config"],
            task=data["task"],
            splits={k: SplitCounts(**v) for k, v in data["splits"].items()},
            reasons=Counter(data["reasons"]),
            notes=Counter(data["notes"]),
            stages={k: StageTiming(**v) for k, v in data["stages"].items()},
            bytes_written=data["bytes_written"],
            seconds=data["seconds"],
            files={k: WrittenFile(**v) for k, v in data["files"].items()},
            fanned_out=data.get("fanned_out", 0),
        )


@dataclass
class BuildTotals:
    """Task stats merged over a whole config."""

    splits: dict[str, SplitCounts] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    stages: dict[str, StageTiming] = field(default_factory=dict)
    bytes_written: int = 0
    task_seconds: float = 0.0
    files: dict[str, WrittenFile] = field(default_factory=dict)
    fanned_out: int = 0

    def add(self, stats: TaskStats) -> None:
        for name, counts in stats.splits.items():
            self.splits.setdefault(name, SplitCounts()).add(counts)
        self.reasons.update(stats.reasons)
        self.notes.update(stats.notes)
        for name, timing in stats.stages.items():
            total = self.stages.setdefault(name, StageTiming())
            total.records_in += timing.records_in
            total.records_out += timing.records_out
            total.seconds += timing.seconds
        self.bytes_written += stats.bytes_written
        self.task_seconds += stats.seconds
        self.files.update(stats.files)
        self.fanned_out += stats.fanned_out

    @property
    def read(self) -> int:
        return sum(c.read for c in self.splits.values())

    @property
    def written(self) -> int:
        return sum(c.written for c in self.splits.values())

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.splits.values())
