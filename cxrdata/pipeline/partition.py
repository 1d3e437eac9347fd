"""Cutting raw records into tasks by the stable hash of their partition key (never by row order).

A patient's records always land in one task, whatever the machine, the Python or the run; records keep
their relative order inside a task, so a task's output is deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxrdata.records import Records, take, values


def stable_task(key: Any, n_tasks: int) -> int:
    """Task index for a partition key (e.g. a subject id): stable across runs, machines and Pythons."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_tasks


def auto_task_count(n_records: int, records_per_task: int) -> int:
    """Enough tasks for shards of ``records_per_task`` records, and a few even for small inputs so
    that several workers have something to do."""
    by_size = -(-n_records // max(1, records_per_task))
    return max(1, by_size, min(16, n_records // 8))


@dataclass
class Task:
    """A unit of work: the raw records of one partition of one output config (a list, or a frame's rows)."""

    config: str
    index: int
    count: int
    records: Records = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


def partition(config: str, records: Records, n_tasks: int) -> list[Task]:
    """Cut records into ``n_tasks`` tasks by the stable hash of their ``_partition`` key (hashed once per key)."""
    keys = values(records, "_partition")
    task_of = {key: stable_task(key, n_tasks) for key in set(keys)}
    index = np.fromiter((task_of[key] for key in keys), dtype=np.int64, count=len(keys))
    order = np.argsort(index, kind="stable")  # each task's rows, in their original order
    bounds = np.searchsorted(index[order], np.arange(n_tasks + 1))
    return [Task(config, i, n_tasks, take(records, order[bounds[i]:bounds[i + 1]])) for i in range(n_tasks)]
