"""Cutting raw records into tasks: per split, then by the stable hash of their partition key (never by row order).

Each split is cut on its own, into as many tasks as its own size calls for (``--tasks N``: about N in all,
shared by size), so a small test split is one shard rather than one tiny shard per task of the big train
split, and ``{split}-{i:05d}-of-{n:05d}`` counts that split's shards. Records without a split form a group
``unknown`` (its tasks write only rejects). Inside a split a patient's records always land in one task,
whatever the machine, the Python or the run; records keep their relative order inside a task, so a task's
output is deterministic.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from cxrdata.records import RecordFrame, Records, values

MIN_RECORDS_PER_TASK = 8  # no task (so no shard) of fewer records, unless its whole split is smaller
UNKNOWN_SPLIT = "unknown"  # the group of records without a split (as rejects count them)


def _key_hash(key: Any) -> int:
    return int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=8).digest(), "big")


def stable_task(key: Any, n_tasks: int) -> int:
    """Task index for a partition key (e.g. a subject id): stable across runs, machines and Pythons."""
    return _key_hash(key) % n_tasks


def auto_task_count(n_records: int, records_per_task: int) -> int:
    """Enough tasks for shards of ``records_per_task`` records, and a few even for small inputs so
    that several workers have something to do."""
    by_size = -(-n_records // max(1, records_per_task))
    return max(1, by_size, min(16, n_records // MIN_RECORDS_PER_TASK))


def split_task_count(hashes: np.ndarray, sizes: np.ndarray, wanted: int) -> int:
    """The most tasks, at most ``wanted``, into which keys of these hashes (``sizes`` records each) fall
    with at least :data:`MIN_RECORDS_PER_TASK` records in every task (1 when no count allows it)."""
    n = max(1, min(wanted, int(sizes.sum()) // MIN_RECORDS_PER_TASK))
    while n > 1 and np.bincount((hashes % np.uint64(n)).astype(np.int64), sizes, minlength=n).min() \
            < MIN_RECORDS_PER_TASK:
        n -= 1
    return n


@dataclass
class Task:
    """A unit of work: the raw records of one partition of one split of one output config (a list, or a
    frame's rows); ``count`` is the number of tasks of that split."""

    config: str
    split: str
    index: int
    count: int
    records: Records = field(default_factory=list)

    @property
    def name(self) -> str:
        """``{split}-{i:05d}``: the task's marker and rejects file are named after it."""
        return f"{self.split}-{self.index:05d}"


def wanted_tasks(split_size: int, total: int, records_per_task: int, tasks: int | None) -> int:
    """A split's task count before the 8-record floor: :func:`auto_task_count` of its own size, or, given
    ``tasks`` (``--tasks``, about that many in all), the split's share of them, rounded up."""
    if tasks is None:
        return auto_task_count(split_size, records_per_task)
    return max(1, -(-tasks * split_size // max(1, total)))


def partition(config: str, records: Records, records_per_task: int, tasks: int | None = None) -> list[Task]:
    """Cut each split's records into its own tasks, by the stable hash of their ``_partition`` key (hashed
    once per key): :func:`wanted_tasks`, fewer where a task would get under :data:`MIN_RECORDS_PER_TASK`
    records. Tasks come split by split (in name order), each split's in index order."""
    if isinstance(records, RecordFrame):
        return _partition_frame(config, records, records_per_task, tasks)
    splits = [str(s or UNKNOWN_SPLIT) for s in values(records, "split")]
    pairs = list(zip(splits, (str(k) for k in values(records, "_partition")), strict=True))  # str(key): as hashed
    task_of, counts = _assign(Counter(pairs), records_per_task, tasks)
    cut = {(split, i): Task(config, split, i, n, []) for split, n in counts.items() for i in range(n)}
    for record, pair in zip(records, pairs, strict=True):
        cut[pair[0], task_of[pair]].records.append(record)
    return list(cut.values())


def _assign(pairs: Counter[tuple[str, str]], records_per_task: int,
            tasks: int | None) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """The task of each (split, key) given its number of records, and each split's task count."""
    by_split: dict[str, list[tuple[str, int]]] = {}
    for (split, key), n in pairs.items():
        by_split.setdefault(split, []).append((key, n))
    task_of: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    total = sum(pairs.values())
    for split in sorted(by_split):
        keys = by_split[split]
        hashes = np.array([_key_hash(k) for k, _ in keys], dtype=np.uint64)
        sizes = np.array([n for _, n in keys], dtype=np.int64)
        wanted = wanted_tasks(int(sizes.sum()), total, records_per_task, tasks)
        counts[split] = n = split_task_count(hashes, sizes, wanted)
        task_of.update(zip(((split, k) for k, _ in keys), (hashes % np.uint64(n)).tolist(), strict=True))
    return task_of, counts


def _partition_frame(config: str, records: RecordFrame, records_per_task: int, tasks: int | None) -> list[Task]:
    """The same cut, as columns: each distinct (split, key) hashed once, rows grouped in one pass, order kept."""
    frame = records.frame
    split = frame.get_column("split").cast(pl.String).fill_null(UNKNOWN_SPLIT).alias("_split")
    key = frame.get_column("_partition").cast(pl.String).fill_null("None").alias("_key")  # str(key), as for dicts
    pairs = pl.DataFrame([split, key]).group_by("_split", "_key").len()
    task_of, counts = _assign(Counter({(s, k): n for s, k, n in pairs.iter_rows()}), records_per_task, tasks)
    joined = (split + "\x00" + key).alias("_pair")
    distinct = [f"{s}\x00{k}" for s, k in task_of]
    task = joined.replace_strict(distinct, list(task_of.values()), return_dtype=pl.Int64)
    groups = frame.with_columns(split, task.alias("_task")).partition_by(
        "_split", "_task", maintain_order=True, include_key=False, as_dict=True)
    empty = frame.clear()
    return [Task(config, s, i, n, RecordFrame(groups.get((s, i), empty), records.raw))
            for s, n in counts.items() for i in range(n)]
