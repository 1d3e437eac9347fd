"""The source contract: what a dataset reader gives the pipeline.

A source checks its download up front (raising :class:`cxrdata.errors.CxrdataError` with one clear
line for anything knowable before work starts), lists its raw records, each with a stable
partition key (``_partition``: for MIMIC the subject id, so a patient never spans tasks), and names
the stages that turn a raw record into an output row. The pipeline, not the source, cuts records
into tasks (:func:`partition`). Per-record problems are found by the stages and become rejects.
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


def partition(config: str, records: list[Record], n_tasks: int) -> list[Task]:
    """Cut records into ``n_tasks`` tasks by the stable hash of their ``_partition`` key.

    Records keep their relative order inside a task, so a task's output is deterministic.
    """
    tasks = [Task(config, i, n_tasks) for i in range(n_tasks)]
    for record in records:
        tasks[stable_task(record["_partition"], n_tasks)].records.append(record)
    return tasks


def auto_task_count(n_records: int, records_per_task: int) -> int:
    """Enough tasks for shards of ``records_per_task`` records, and a few even for small inputs so
    that several workers have something to do."""
    by_size = -(-n_records // max(1, records_per_task))
    return max(1, by_size, min(16, n_records // 8))


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
    config: str  # output config name, e.g. "mimic"
    schema: str  # name of the schema file under schemas/
    splits: tuple[str, ...]  # canonical splits this config writes (every task writes a shard for each)
    root: Path

    def check(self) -> None:
        """Raise CxrdataError for a missing root, file or column, before any work starts."""
        ...

    def inputs(self) -> list[InputFile]:
        """The files this build reads (for the manifest)."""
        ...

    def records(self) -> list[Record]:
        """All raw records in a deterministic order, each with ``id``, ``split`` (canonical or None)
        and ``_partition`` (the stable key that decides its task)."""
        ...

    def records_per_task(self) -> int:
        """How many records make a task (and so a shard of a few hundred MB)."""
        ...

    def stages(self) -> list[Stage]:
        """The stages that turn a raw record into an output row (in order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Options that change the output (part of the config hash), e.g. views kept, image size."""
        ...
