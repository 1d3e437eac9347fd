"""Cutting raw records into tasks by the stable hash of their partition key (never by row order).

A patient's records always land in one task, whatever the machine, the Python or the run; records keep
their relative order inside a task, so a task's output is deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cxrdata.records import RecordFrame, Records, values


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
    if isinstance(records, RecordFrame):
        return _partition_frame(config, records, n_tasks)
    keys = values(records, "_partition")
    task_of = {key: stable_task(key, n_tasks) for key in set(keys)}
    tasks = [Task(config, i, n_tasks, []) for i in range(n_tasks)]
    for record, key in zip(records, keys, strict=True):
        tasks[task_of[key]].records.append(record)
    return tasks


def _partition_frame(config: str, records: RecordFrame, n_tasks: int) -> list[Task]:
    """The same cut, as columns: each distinct key hashed once, rows grouped in one pass, order kept."""
    keys = records.frame.get_column("_partition").cast(pl.String).fill_null("None")  # str(key), as for dicts
    distinct = keys.unique()
    task = keys.replace_strict(distinct, [stable_task(k, n_tasks) for k in distinct.to_list()],
                               return_dtype=pl.Int64)
    groups = records.frame.with_columns(task.alias("_task")).partition_by("_task", maintain_order=True,
                                                                          include_key=False, as_dict=True)
    empty = records.frame.clear()
    return [Task(config, i, n_tasks, RecordFrame(groups.get((i,), empty), records.raw)) for i in range(n_tasks)]
