"""The Ray engine: the same tasks and stages as the local engine, run through Ray Data on a cluster.

Same signature as :func:`cxrdata.pipeline.engine_local.run_local` (plus ``address``), same output, byte for
byte: the unit of work stays the **task** (as in NeMo Curator, where a task object flows from stage to
stage). One Ray Data row is one task (its records pickled: records hold bytes, tuples and datetimes that
Arrow would reshape, and ``_``-keys of any type), and the stage chain is cut in two:

- the **head**, up to the last stage that declares GPUs (RadGraph-XL on CUDA): one ``map_batches`` per
  stage. GPU stages run in long-lived actors whose ``__init__`` calls ``setup()`` once (``num_gpus`` and
  ``num_cpus`` from the stage's :class:`~cxrdata.stage.Resources`, a pool of 1 up to as many
  actors as the cluster's GPUs allow); the CPU stages before them run as Ray tasks (a function,
  ``num_cpus`` from the stage). Inside a task every stage sees exactly the record batches the local
  engine gives it (the smallest ``batch_size`` of the chain, as there), so outputs and the order of
  rejects are the same. A head carries metadata and text only: models come before the images.
- the **tail**, the CPU stages after the last GPU stage (decode, resize, encode, text rules), fused with
  the writer in one Ray task per task (the whole chain when there is no GPU stage): records stream through
  them in batches into the shard writers, so no image ever enters Ray's object store. The write follows
  :func:`~cxrdata.pipeline.task_runner.run_task` step for step (same batches, same order of rows and
  rejects, same temporary name / rename / marker sequence) but lets go of each batch once written, so a
  worker holds one batch and one row group of images, not a whole task's.

A CPU stage's ``setup()`` runs once per worker process, on first use, as in the local pool. Unlike NeMo
Curator, a ``setup()`` alone (an SQLite cache, a zip handle, RadGraph on CPU) does not make a stage an
actor: in the tail its records (e.g. parsed scene graphs) never pass through the object store.

Shards, rejects and the marker are written by the worker (temporary name, rename, then the marker), so OUT
must be a filesystem every node sees. A worker that dies (killed, out of memory, node lost) has its task
retried from scratch, at most ``RETRIES`` times (actors are restarted as often); a retried task first clears
its leftovers, and a task is only done when its marker exists, so nothing is lost or written twice and
rerunning a build skips finished tasks exactly as with the local engine. A Python exception in a stage
is not retried: it fails the build, as locally.

Without ``address`` a local Ray runtime is started with ``workers`` CPUs (no dashboard, localhost only) and
shut down when the config's tasks are done; with it, the engine connects to that cluster (``auto``: the one
this node belongs to) and uses all of it. If Ray is already initialised in this process, that runtime is used.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import OutputLayout
from cxrdata.pipeline.partition import Task
from cxrdata.pipeline.plan import ConfigPlan
from cxrdata.pipeline.stats import StageTiming, TaskStats
from cxrdata.pipeline.task_runner import REJECTED, TaskContext, TaskOutput, chain_batch_size, run_chain, write_marker
from cxrdata.stage import Record, Reject, Stage, StageChain, split_rejects

Progress = Callable[[str, int], None]

RETRIES = 3  # attempts after a worker death, per task (and restarts per actor)
OBJECT_STORE_BYTES = 1 << 30  # local runtime: only task payloads (metadata, text) and stats pass through it
_PICKLE = pickle.HIGHEST_PROTOCOL


def needs_actor(stage: Stage) -> bool:
    """A stage runs in long-lived actors when it declares GPUs (a model on a device)."""
    return stage.resources.gpus > 0


def split_chain(stages: list[Stage]) -> tuple[list[Stage], list[Stage]]:
    """(head, tail): the head ends with the last GPU stage; the tail is CPU work, fused with the writer."""
    last = max((i for i, stage in enumerate(stages) if needs_actor(stage)), default=-1)
    return stages[: last + 1], stages[last + 1 :]


@dataclass
class _Chunk:
    """One record batch of a task on its way through the head."""

    splits: list[str]  # split of each raw record (and of each record a fan-out added), counted as read
    kept: list[Record]
    rejects: list[Reject] = field(default_factory=list)
    stages: dict[str, StageTiming] = field(default_factory=dict)
    fanned_out: int = 0


@dataclass
class _Flight:
    """A task on its way through the stages, its records cut in the batches every stage sees."""

    task: Task  # records moved into the chunks
    chunks: list[_Chunk]


# ---- worker side -------------------------------------------------------------------------------------

_worker_stages: dict[tuple[str, str, str], list[Stage]] = {}
_set_up: set[tuple[str, str, str, int]] = set()
_tail_cache: dict[tuple[str, str, str], TaskContext] = {}


def _init_process() -> None:
    import cv2

    cv2.setNumThreads(1)  # one task per core: OpenCV's own threads would only contend


def _key(plan: ConfigPlan, layout: OutputLayout, config_hash: str) -> tuple[str, str, str]:
    return str(layout.root), plan.config, config_hash


def _stages(plan: ConfigPlan, layout: OutputLayout, config_hash: str) -> list[Stage]:
    """This worker process's stage objects: its unpickled copy of the plan's (as each local worker has)."""
    key = _key(plan, layout, config_hash)
    if key not in _worker_stages:
        _init_process()
        _worker_stages[key] = plan.stages
    return _worker_stages[key]


def _stage(plan: ConfigPlan, layout: OutputLayout, config_hash: str, index: int) -> Stage:
    """Stage ``index`` of this worker process, set up on first use."""
    stage = _stages(plan, layout, config_hash)[index]
    key = (*_key(plan, layout, config_hash), index)
    if key not in _set_up:
        stage.setup()
        _set_up.add(key)
    return stage


def _tail(plan: ConfigPlan, layout: OutputLayout, config_hash: str, n_head: int) -> TaskContext:
    """The tail's context in this worker process (the whole chain when there is no head)."""
    key = _key(plan, layout, config_hash)
    if key not in _tail_cache:
        stages = _stages(plan, layout, config_hash)
        chain = StageChain([_stage(plan, layout, config_hash, i) for i in range(n_head, len(stages))])
        _tail_cache[key] = TaskContext(plan, layout, config_hash, chain, chain_batch_size(stages))
    return _tail_cache[key]


def _run_head_stage(stage: Stage, flight: _Flight) -> _Flight:
    for chunk in flight.chunks:
        if not chunk.kept:
            continue
        started, n_in = time.perf_counter(), len(chunk.kept)
        before = Counter(str(r.get("split") or "unknown") for r in chunk.kept)
        chunk.kept, rejects = split_rejects(stage.run(chunk.kept))
        chunk.rejects.extend(rejects)
        if len(chunk.kept) + len(rejects) != n_in:  # a fan-out: its extra records count as read, as locally
            after = Counter(str(r.get("split") or "unknown") for r in chunk.kept) + Counter(r.split for r in rejects)
            for split in after:
                chunk.splits += [split] * max(0, after[split] - before[split])
            chunk.fanned_out += len(chunk.kept) + len(rejects) - n_in
        timing = chunk.stages.setdefault(stage.name, StageTiming())
        timing.records_in += n_in
        timing.records_out += len(chunk.kept)
        timing.seconds += time.perf_counter() - started
    return flight


def _map_payloads(batch: pd.DataFrame, fn: Callable[[Any], Any]) -> pd.DataFrame:
    payloads = [pickle.dumps(fn(pickle.loads(p)), protocol=_PICKLE) for p in batch["payload"]]
    return pd.DataFrame({"task": batch["task"].to_numpy(), "payload": payloads})


def head_stage_task(batch: pd.DataFrame, plan: ConfigPlan, layout: OutputLayout, config_hash: str,
                    index: int) -> pd.DataFrame:
    """A CPU stage of the head, as a Ray task."""
    stage = _stage(plan, layout, config_hash, index)
    return _map_payloads(batch, lambda flight: _run_head_stage(stage, flight))


class HeadStageActor:
    """A GPU stage of the head, as a long-lived actor: ``setup()`` once, then task after task."""

    def __init__(self, plan: ConfigPlan, layout: OutputLayout, config_hash: str, index: int) -> None:
        _init_process()
        self.stage = plan.stages[index]
        self.stage.setup()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return _map_payloads(batch, lambda flight: _run_head_stage(self.stage, flight))


def tail_task(batch: pd.DataFrame, plan: ConfigPlan, layout: OutputLayout, config_hash: str,
              head: list[str]) -> pd.DataFrame:
    """The tail and the writer, as a Ray task: a task's shards, rejects and marker; returns its stats."""
    ctx = _tail(plan, layout, config_hash, len(head))
    stats = [json.dumps(_write_flight(ctx, pickle.loads(payload), head).to_json()) for payload in batch["payload"]]
    return pd.DataFrame({"task": batch["task"].to_numpy(), "stats": stats})


def _write_flight(ctx: TaskContext, flight: _Flight, head: list[str]) -> TaskStats:
    """:func:`~cxrdata.pipeline.task_runner.run_task` for a task whose head already ran, consuming its
    batches (each one is released once written)."""
    started = time.perf_counter()
    layout, task = ctx.layout, flight.task
    layout.clear_task_leftovers(task.config, task.name)
    stats = TaskStats(config=task.config, task=task.name)
    for name in head:
        timings = [chunk.stages[name] for chunk in flight.chunks if name in chunk.stages]
        if timings:
            stats.stages[name] = StageTiming(sum(t.records_in for t in timings), sum(t.records_out for t in timings),
                                             sum(t.seconds for t in timings))
    head_seconds = sum(stats.stages[name].seconds for name in head if name in stats.stages)
    with TaskOutput(ctx, task, stats) as output:
        while flight.chunks:
            chunk = flight.chunks.pop(0)
            for split in chunk.splits:
                stats.split(split).read += 1
            stats.fanned_out += chunk.fanned_out
            kept, tail_dropped = run_chain(ctx.chain, chunk.kept, stats)
            output.write(kept, [*chunk.rejects, *tail_dropped])
    stats.seconds = time.perf_counter() - started + head_seconds  # the head's work counts as the task's
    write_marker(layout.marker_path(task.config, task.name), ctx.config_hash, stats)
    return stats


# ---- driver side -------------------------------------------------------------------------------------


def _flight(task: Task, batch_size: int) -> _Flight:
    chunks = []
    for start in range(0, len(task.records), batch_size):
        batch = task.records[start : start + batch_size]
        chunks.append(_Chunk([str(r.get("split") or "unknown") for r in batch], list(batch)))
    return _Flight(Task(task.config, task.split, task.index, task.count), chunks)


def _connect(address: str | None, workers: int) -> bool:
    """Connect to ``address`` or start a local runtime; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING, "configure_logging": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=max(1, workers), object_store_memory=OBJECT_STORE_BYTES, **options)
    return True


def _pool_size(stage: Stage, cluster: dict[str, float]) -> int:
    """Most actors of a GPU stage the cluster can hold at once."""
    gpus, available = stage.resources.gpus, cluster.get("GPU", 0.0)
    if available < gpus:
        raise CxrdataError(f"stage {stage.name!r} needs {gpus:g} GPU per actor; the Ray cluster has {available:g} "
                           "(start Ray workers with GPUs, or run the stage on CPU: --device cpu)")
    by_cpu = cluster.get("CPU", 1.0) // stage.resources.cpus if stage.resources.cpus > 0 else available // gpus
    return max(1, int(min(available // gpus, by_cpu)))


def build_dataset(plan: ConfigPlan, layout: OutputLayout, config_hash: str, tasks: list[Task]) -> Any:
    """The Ray Dataset of a config's tasks: head stages, then tail + writer; one ``stats`` row per task."""
    import ray
    import ray.data

    stages = plan.stages
    head, tail = split_chain(stages)
    batch_size = chain_batch_size(stages)
    items = [{"task": t.name, "payload": pickle.dumps(_flight(t, batch_size), protocol=_PICKLE)} for t in tasks]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    cluster = ray.cluster_resources()
    common: dict[str, Any] = {"batch_size": 1, "batch_format": "pandas", "zero_copy_batch": True}
    with warnings.catch_warnings():
        # Bounded retries can only be set through ``ray_remote_args`` (deprecated for Ray 2.64; hence the pin):
        # Ray Data's default is to retry a task whose worker died forever, which turns a record that always
        # kills its worker (out of memory) into a build that never ends.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        for index, stage in enumerate(head):
            args = (plan, layout, config_hash, index)
            if needs_actor(stage):
                pool = (1, _pool_size(stage, cluster))
                ds = ds.map_batches(HeadStageActor, fn_constructor_args=args, concurrency=pool,
                                    num_cpus=stage.resources.cpus, num_gpus=stage.resources.gpus or None,
                                    max_restarts=RETRIES, max_task_retries=RETRIES, **common)
            else:
                ds = ds.map_batches(head_stage_task, fn_args=args, num_cpus=stage.resources.cpus,
                                    max_retries=RETRIES, **common)
        cpus = max((s.resources.cpus for s in (tail or stages)), default=1.0)
        return ds.map_batches(tail_task, fn_args=(plan, layout, config_hash, [s.name for s in head]),
                              num_cpus=cpus, max_retries=RETRIES, **common)


def run_ray(plan: ConfigPlan, layout: OutputLayout, config_hash: str, tasks: list[Task],
            workers: int, progress: Progress, address: str | None = None) -> Iterator[TaskStats]:
    """Run ``tasks`` on Ray and yield each one's stats as it completes."""
    if not tasks:
        return
    try:
        import ray
        from ray.data import DataContext
    except ImportError:
        raise CxrdataError('the ray engine needs Ray Data: pip install "cxrdata[ray]"') from None
    started_here = _connect(address, workers)
    context = DataContext.get_current()
    saved = context.enable_progress_bars, logging.getLogger("ray.data").level
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars; errors still raise
    names = [*(s.name for s in plan.stages), "write"]
    try:
        for row in build_dataset(plan, layout, config_hash, tasks).iter_rows():
            stats = TaskStats.from_json(json.loads(row["stats"]))
            progress(REJECTED, sum(c.rejected for c in stats.splits.values()))
            for name in names:
                progress(name, sum(c.read for c in stats.splits.values()))
            yield stats
    except ray.exceptions.RayError as exc:
        if _worker_died(exc):
            raise CxrdataError(f"a Ray worker died {RETRIES + 1} times on one task (killed, or out of memory); "
                               "finished tasks are kept: rerun the same command to resume") from exc
        raise
    finally:
        context.enable_progress_bars = saved[0]
        logging.getLogger("ray.data").setLevel(saved[1])
        if started_here:
            ray.shutdown()


def _worker_died(exc: BaseException) -> bool:
    import ray.exceptions as rex

    died = (rex.WorkerCrashedError, rex.ActorDiedError, rex.NodeDiedError, rex.OutOfMemoryError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, died):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
