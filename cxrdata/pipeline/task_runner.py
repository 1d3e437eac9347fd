"""Run one task: raw records -> stages -> shards, rejects and a completion marker.

Order of effects (what makes a killed build safe to rerun): every shard and the rejects file are
written under temporary names and renamed when complete; only then is the completion marker
written (also by rename). A task without a marker is redone from scratch, overwriting whatever
it had renamed into place before the kill with identical content.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from cxrdata.io.class_labels import ClassLabelCheck
from cxrdata.io.layout import OutputLayout
from cxrdata.io.schema import TableSchema, load_schema
from cxrdata.io.writer import ShardWriter, shard_name
from cxrdata.pipeline.partition import Task
from cxrdata.pipeline.plan import ConfigPlan
from cxrdata.pipeline.stats import StageTiming, TaskStats, WrittenFile
from cxrdata.stage import Record, Reject, StageChain, split_rejects

ProgressSink = Callable[[str, int], None]
# Besides each stage's name and "write", a sink hears how many records were rejected, under this name.
REJECTED = "rejected"


def _no_progress(stage: str, n: int) -> None:
    pass


def chain_batch_size(stages: list) -> int:
    """The record batch every stage sees: the smallest declared by the chain."""
    return min((s.resources.batch_size for s in stages), default=64)


@dataclass
class TaskContext:
    """What a worker needs to run tasks of one plan; built once per worker (the stages set up once)."""

    plan: ConfigPlan
    layout: OutputLayout
    config_hash: str
    chain: StageChain
    batch_size: int

    @property
    def schema(self) -> TableSchema:
        return self.plan.schema

    @classmethod
    def create(cls, plan: ConfigPlan, layout: OutputLayout, config_hash: str,
               stages: list | None = None) -> TaskContext:
        """``stages``: a part of the plan's chain (the Ray engine's tail); default the whole chain."""
        chain = StageChain(list(plan.stages if stages is None else stages))
        chain.setup()
        return cls(plan, layout, config_hash, chain, chain_batch_size(plan.stages))


def _reject_row(config: str, reject: Reject) -> Record:
    return {"config": config, "record_id": reject.record_id, "split": reject.split,
            "stage": reject.stage, "reason": reject.reason, "detail": reject.detail}


class TaskOutput:
    """One task's shard (of its split) and rejects file, and the accounting of what reaches them.

    Used as a context manager: files are renamed into place on a clean exit and removed on an error.
    Every engine writes through it, so their outputs and counts cannot drift apart. A task of records
    without a split (``unknown``), or of a split the source does not declare, has no shard: only rejects.
    """

    def __init__(self, ctx: TaskContext, task: Task, stats: TaskStats) -> None:
        layout = ctx.layout
        self.root, self.config, self.split, self.stats = layout.root, task.config, task.split, stats
        self.writers = {
            task.split: ShardWriter(layout.shard_path(task.config, shard_name(task.split, task.index, task.count)),
                                    ctx.schema)
        } if task.split in ctx.plan.source.splits else {}
        self.rejects = ShardWriter(layout.rejects_path(task.config, task.name), load_schema("rejects"))
        self.class_labels = ClassLabelCheck(schema=ctx.schema)

    def write(self, kept: list[Record], dropped: list[Reject]) -> None:
        """Write a processed batch and count it (``read`` is counted by the caller, before the stages)."""
        kept, outside = split_rejects(self.class_labels.run(kept))  # closed vocabularies: never coerced
        dropped = [*dropped, *outside]
        for reject in dropped:
            self.stats.split(reject.split).rejected += 1
            self.stats.reasons[reject.reason] += 1
            self.stats.notes.update(reject.notes)
        self.rejects.write([_reject_row(self.config, r) for r in dropped])
        for record in kept:
            self.stats.notes.update(record.get("_notes", ()))
            split = record["split"]
            if split not in self.writers:
                raise ValueError(f"record {record['id']!r} of split {split!r} kept in a task of split {self.split!r} "
                                 "(a stage changed its split, or kept a record without one)")
            self.writers[split].write([record])
            self.stats.split(split).written += 1

    def __enter__(self) -> TaskOutput:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        files = (*self.writers.values(), self.rejects)
        if exc_type is not None:
            for writer in files:
                writer.abort()
            return
        for writer in files:
            if path := writer.close():
                size = path.stat().st_size
                self.stats.bytes_written += size
                self.stats.files[path.relative_to(self.root).as_posix()] = WrittenFile(writer.rows, size)


def count_read(stats: TaskStats, records: list[Record]) -> None:
    """Count records as read, under the split they arrive with."""
    for record in records:
        stats.split(str(record.get("split") or "unknown")).read += 1


def run_task(ctx: TaskContext, task: Task, progress: ProgressSink = _no_progress) -> TaskStats:
    """Process one task completely and mark it done; returns its stats."""
    started = time.perf_counter()
    ctx.layout.clear_task_leftovers(task.config, task.name)
    stats = TaskStats(config=task.config, task=task.name)
    with TaskOutput(ctx, task, stats) as output:
        for start in range(0, len(task.records), ctx.batch_size):
            # Shallow copies: stages fill records in place, and the task's own list must not keep every
            # processed image alive until the task ends (the local engine's main process holds all tasks).
            batch = [dict(r) for r in task.records[start : start + ctx.batch_size]]
            count_read(stats, batch)
            kept, dropped = run_chain(ctx.chain, batch, stats, progress)
            output.write(kept, dropped)
            progress(REJECTED, len(dropped))
            progress("write", len(batch))
    stats.seconds = time.perf_counter() - started
    write_marker(ctx.layout.marker_path(task.config, task.name), ctx.config_hash, stats)
    return stats


def run_chain(chain: StageChain, batch: list[Record], stats: TaskStats,
              progress: ProgressSink = _no_progress) -> tuple[list[Record], list[Reject]]:
    """One batch through every stage, timing each. A stage that fans a record out into several adds the
    extra records to ``read`` of their split (read = written + rejected stays true, in output records); a
    stage that returns fewer records than it was given has lost some, which is a bug, never data."""
    rejects: list[Reject] = []
    handled = len(batch)  # progress counts records handled, rejected earlier or not, so bars complete
    for stage in chain.stages:
        if not batch:
            progress(stage.name, handled)
            continue
        t0 = time.perf_counter()
        before = Counter(str(r.get("split") or "unknown") for r in batch)
        n_in = len(batch)
        batch, stage_rejects = split_rejects(stage.run(batch))
        if len(batch) + len(stage_rejects) != n_in:
            _count_fan_out(stage.name, before, batch, stage_rejects, stats)
        timing = stats.stages.setdefault(stage.name, StageTiming())
        timing.records_in += n_in
        timing.records_out += len(batch)
        timing.seconds += time.perf_counter() - t0
        rejects.extend(stage_rejects)
        progress(stage.name, handled)
    return batch, rejects


def _count_fan_out(stage: str, before: Counter[str], kept: list[Record], rejects: list[Reject],
                   stats: TaskStats) -> None:
    after = Counter(str(r.get("split") or "unknown") for r in kept) + Counter(r.split for r in rejects)
    for split in set(before) | set(after):
        extra = after[split] - before[split]
        if extra < 0:
            raise RuntimeError(f"stage {stage} returned {-extra} {split} record(s) fewer than it was given: "
                               "a record is either kept or rejected, never dropped")
        stats.split(split).read += extra
        stats.fanned_out += extra


def write_marker(path: Path, config_hash: str, stats: TaskStats) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"config_hash": config_hash, "stats": stats.to_json()}, indent=1))
    os.replace(tmp, path)


def read_marker(path: Path, config_hash: str) -> TaskStats | None:
    """The stats of a finished task, or None when it has no valid marker for this config."""
    try:
        data = json.loads(path.read_text())
        if data.get("config_hash") != config_hash:
            return None
        return TaskStats.from_json(data["stats"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, empty or damaged: the task is redone


def files_intact(root: Path, stats: TaskStats) -> bool:
    """Whether every file a finished task wrote is still there, with its size and row count."""
    for name, written in stats.files.items():
        path = root / name
        try:
            if path.stat().st_size != written.bytes or pq.read_metadata(path).num_rows != written.rows:
                return False
        except (OSError, ValueError):  # gone, or no longer a Parquet file
            return False
    return True


def finished_task(layout: OutputLayout, config: str, task: str, config_hash: str) -> TaskStats | None:
    """The stats of task ``task`` (its name) when it is done and its files are intact; None when it must be
    (re)done."""
    stats = read_marker(layout.marker_path(config, task), config_hash)
    return stats if stats is not None and files_intact(layout.root, stats) else None
