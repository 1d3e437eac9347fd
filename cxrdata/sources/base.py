"""The source contract: what a dataset reader gives the pipeline.

A source checks its download up front (raising :class:`cxrdata.errors.CxrdataError` with one clear
line for anything knowable before work starts), plans tasks of raw records partitioned by a stable
key (never by row order), and names the stages that turn a raw record into an output row.
Per-record problems are found by those stages and become rejects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cxrdata.pipeline.stage import Record, Stage

# Canonical split names in every output; each dataset's spellings map onto these.
SPLIT_ALIASES = {
    "train": "train",
    "validate": "validation",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "test": "test",
}


def canonical_split(value: Any) -> str | None:
    """``validate``/``valid``/``val`` -> ``validation``; unknown or missing -> None."""
    if value is None:
        return None
    return SPLIT_ALIASES.get(str(value).strip().lower())


def stable_task(key: Any, n_tasks: int) -> int:
    """Task index for a partition key (e.g. a subject id): stable across runs, machines and Pythons."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_tasks


@dataclass
class Task:
    """A unit of work: the raw records of one partition of one output config."""

    config: str
    index: int
    count: int
    records: list[Record] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


@dataclass(frozen=True)
class InputFile:
    """A file the build read: recorded in the manifest for provenance."""

    path: str
    size: int

    @classmethod
    def of(cls, path: Path, root: Path) -> InputFile:
        return cls(str(path.relative_to(root)), path.stat().st_size)


class Source(Protocol):
    """A dataset reader producing one output config."""

    dataset: str  # e.g. "mimic-cxr-jpg"
    config: str  # output config name, e.g. "mimic"; also the schema file's name
    root: Path

    def check(self) -> None:
        """Raise CxrdataError for a missing root, file or column, before any work starts."""
        ...

    def inputs(self) -> list[InputFile]:
        """The files this build reads (for the manifest)."""
        ...

    def plan(self, n_tasks: int) -> list[Task]:
        """All raw records, partitioned into ``n_tasks`` tasks by a stable key; sorted within a task."""
        ...

    def stages(self) -> list[Stage]:
        """The stages that turn a raw record into an output row (in order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Options that change the output (part of the config hash), e.g. views kept, image size."""
        ...
