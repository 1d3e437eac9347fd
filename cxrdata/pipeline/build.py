"""A build: check sources, plan tasks, skip finished ones, run the rest, write manifest and card.

Resume is marker-based (as in datatrove): a task whose marker exists for this configuration's
hash, and whose files are all still there with the sizes and row counts the marker records, is not
run again; any other task is redone. The configuration an OUT is being built with is recorded first;
running a different configuration against the same OUT is refused rather than mixing two builds. A
finished build whose card or manifest is missing gets them rewritten.

A build that writes nothing, or rejects more than ``max_reject_share`` of what it read, still writes
its manifest, card and rejects (so the user can look) and then reports the problem in
:attr:`BuildResult.problems`; the CLI turns those into a non-zero exit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.io.card import write_card
from cxrdata.io.layout import OutputLayout, unwritable
from cxrdata.io.stats import statistics
from cxrdata.pipeline.engine_local import run_local
from cxrdata.pipeline.manifest import build_manifest, write_manifest
from cxrdata.pipeline.partition import Task, partition
from cxrdata.pipeline.plan import ConfigPlan
from cxrdata.pipeline.progress import BuildProgress
from cxrdata.pipeline.stats import BuildTotals, TaskStats
from cxrdata.pipeline.task_runner import finished_task, read_marker

Engine = Callable[..., Any]


def _run_ray(*args: Any, **kwargs: Any) -> Any:
    """The Ray engine, imported only when chosen (``ray`` is the optional ``[ray]`` extra)."""
    from cxrdata.pipeline.engine_ray import run_ray

    return run_ray(*args, **kwargs)


ENGINES: dict[str, Engine] = {"local": run_local, "ray": _run_ray}


@dataclass
class BuildOptions:
    out: Path
    workers: int = os.cpu_count() or 1
    tasks: int | None = None  # about this many tasks in all, shared by split size; None: from each split's size
    overwrite: bool = False
    quiet: bool = False
    engine: str = "local"
    address: str | None = None  # ray: the cluster to connect to (None: start a local Ray runtime)
    max_reject_share: float = 0.5  # a config rejecting more than this share of what it read is a failed build

    def check(self) -> None:
        """Refuse impossible settings in one line, before anything is read or written."""
        if self.workers < 1:
            raise CxrdataError(f"--workers must be at least 1, not {self.workers}")
        if self.tasks is not None and self.tasks < 1:
            raise CxrdataError(f"--tasks must be at least 1, not {self.tasks}")
        if not 0.0 <= self.max_reject_share <= 1.0:
            raise CxrdataError(f"--max-reject-share must be between 0 and 1, not {self.max_reject_share}")
        if self.engine not in ENGINES:
            raise CxrdataError(f"unknown engine {self.engine!r}; available: {', '.join(ENGINES)}")
        if self.address is not None and self.engine != "ray":
            raise CxrdataError("--ray-address applies only with --engine ray")


@dataclass
class ConfigResult:
    config: str
    tasks: int
    tasks_run: int
    totals: BuildTotals
    excluded: dict[str, int] = field(default_factory=dict)  # whole-dataset filters, counted before the tasks

    @property
    def tasks_already_done(self) -> int:
        return self.tasks - self.tasks_run


@dataclass
class BuildResult:
    out: Path
    config_hash: str
    results: list[ConfigResult] = field(default_factory=list)
    seconds: float = 0.0
    nothing_to_do: bool = False
    problems: list[str] = field(default_factory=list)  # a config wrote nothing or rejected too much
    rewritten: list[str] = field(default_factory=list)  # card / manifest rewritten for a finished build

    @property
    def output_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe_config(plan: ConfigPlan, tasks: list[Task]) -> dict[str, Any]:
    """Everything that decides a config's output; its hash keys resume and refusal (``tasks``: the number
    of tasks, so of shards, of each split).

    Paths are resolved, so the same folder spelled another way (relative, absolute, through a link) is
    the same build."""
    return {
        "dataset": plan.source.dataset,
        "root": str(Path(plan.source.root).resolve()),
        "schema": f"{plan.schema.name}@{plan.schema.version}",
        "options": plan.options,
        "stages": [stage.fingerprint() for stage in plan.stages],
        "tasks": {t.split: t.count for t in tasks},
    }


def _previous_build(layout: OutputLayout, config_hash: str) -> dict[str, Any] | None:
    """The configuration OUT was built with; None for a new OUT, or for a damaged ``build.json`` (a crash
    while it was written) when nothing in OUT says another configuration was built there."""
    if not layout.build_config.exists():
        return None
    try:
        previous = json.loads(layout.build_config.read_text())
        if isinstance(previous, dict) and "hash" in previous:
            return previous
    except (OSError, ValueError):
        pass
    hashes = set()
    for marker in layout.root.glob("tasks/*/*.json"):
        try:
            hashes.add(json.loads(marker.read_text()).get("config_hash"))
        except (OSError, ValueError, AttributeError):
            continue
    if hashes - {config_hash}:
        raise CxrdataError(f"{layout.build_config} is damaged and {layout.root} holds tasks of another "
                           "configuration: rerun with --overwrite to start over, or choose another --out")
    return None


def _check_same_build(layout: OutputLayout, build_config: dict[str, Any]) -> None:
    previous = _previous_build(layout, build_config["hash"])
    if previous is None or previous.get("hash") == build_config["hash"]:
        return
    changed = _changed_keys(previous.get("configs", {}), build_config["configs"])
    raise CxrdataError(
        f"{layout.root} holds a build with a different configuration (changed: {', '.join(changed)}); "
        "rerun with --overwrite to start over, or choose another --out"
    )


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def build(plans: list[ConfigPlan], options: BuildOptions) -> BuildResult:
    """Run a build of one or more output configs (:func:`cxrdata.pipeline.plan.plan_build`) into ``options.out``."""
    options.check()
    for plan in plans:
        plan.source.check()
    layout = OutputLayout(options.out)
    try:
        with layout.lock():
            return _build_locked(plans, options, layout)
    except OSError as exc:  # a full disk, a read-only folder: here, or in a worker
        raise unwritable(layout.root, exc) from None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _build_locked(config_plans: list[ConfigPlan], options: BuildOptions, layout: OutputLayout) -> BuildResult:
    started = time.perf_counter()
    if options.overwrite:
        layout.remove_build()
    layout.clear_leftovers()

    plans: dict[str, tuple[ConfigPlan, list[Task]]] = {}
    configs: dict[str, Any] = {}
    excluded: dict[str, dict[str, int]] = {}
    for plan in config_plans:
        records, excluded[plan.config] = plan.records()
        tasks = partition(plan.config, records, plan.records_per_task(), options.tasks)
        del records  # the tasks hold what they need of it
        plans[plan.config] = (plan, tasks)
        configs[plan.config] = describe_config(plan, tasks)
    build_config = {"tool": "cxrdata", "configs": configs, "hash": _hash(configs)}
    _check_same_build(layout, build_config)
    if _previous_build(layout, build_config["hash"]) is None:
        _write_atomically(layout.build_config, json.dumps(build_config, indent=2, sort_keys=True))

    config_hash = build_config["hash"]
    result = BuildResult(out=options.out, config_hash=config_hash)
    with ThreadPoolExecutor(max_workers=8) as pool:  # each marker and its files checked once; Parquet footers
        done = {config: dict(zip((t.name for t in tasks),  # are read with the GIL released, so threads overlap
                                 pool.map(lambda t, c=config: finished_task(layout, c, t.name, config_hash), tasks),
                                 strict=True))
                for config, (_, tasks) in plans.items()}
    pending = {config: [t for t in tasks if done[config][t.name] is None] for config, (_, tasks) in plans.items()}
    if not any(pending.values()) and _manifest_hash(layout) == config_hash and layout.card.is_file():
        result.nothing_to_do = True
        for config, (_, tasks) in plans.items():
            result.results.append(ConfigResult(config, len(tasks), 0,
                                               _totals(layout, config, tasks, config_hash, done[config]),
                                               excluded[config]))
        result.problems = _problems(result, options.max_reject_share)
        result.seconds = time.perf_counter() - started
        return result
    if not any(pending.values()):
        result.rewritten = [p.name for p in (layout.manifest, layout.card) if not p.is_file()] or ["manifest.json"]

    engine = ENGINES[options.engine]
    if options.address is not None:
        engine = functools.partial(engine, address=options.address)
    with BuildProgress(quiet=options.quiet) as progress:
        for config, (plan, tasks) in plans.items():
            todo = pending[config]
            if todo:
                workers = min(options.workers, len(todo)) if options.engine == "local" else options.workers
                progress.start(config, sum(len(t.records) for t in todo), [s.name for s in plan.stages],
                               tasks=len(todo), workers=workers)
                for _stats in engine(plan, layout, config_hash, todo, options.workers, progress.advance):
                    pass
            for task in tasks:
                task.records = []  # written: from here on only the shards are read (the joined frame is freed)
            totals = _totals(layout, config, tasks, config_hash, done[config])
            result.results.append(ConfigResult(config, len(tasks), len(todo), totals, excluded[config]))

    for config, (_, tasks) in plans.items():
        _remove_stale_shards(layout, config, tasks, config_hash)
    manifest = build_manifest(layout, build_config, {r.config: r.totals for r in result.results},
                              {p.config: p for p in config_plans}, {r.config: r.excluded for r in result.results},
                              __version__)
    for config, entry in manifest["configs"].items():
        entry["statistics"] = statistics(layout.root, config)  # from the written shards and rejects
    write_manifest(layout, manifest)
    write_card(layout, manifest)
    result.problems = _problems(result, options.max_reject_share)
    result.seconds = time.perf_counter() - started
    return result


_SHARD = re.compile(r"^[a-z]+-\d{5}-of-\d{5}\.parquet$")


def _remove_stale_shards(layout: OutputLayout, config: str, tasks: list[Task], config_hash: str) -> None:
    """Delete shard-named files of this config that no finished task lists, so the card's ``data_files``
    patterns match exactly the build's shards (e.g. a split a rerun task no longer writes)."""
    listed = set()
    for task in tasks:
        stats = read_marker(layout.marker_path(config, task.name), config_hash)
        listed |= set(stats.files) if stats is not None else set()
    for path in layout.data_dir(config).glob("*.parquet"):
        if _SHARD.match(path.name) and path.relative_to(layout.root).as_posix() not in listed:
            path.unlink()


def _problems(result: BuildResult, max_reject_share: float) -> list[str]:
    """One line per config that wrote nothing or rejected more than ``max_reject_share`` of its records."""
    problems = []
    for r in result.results:
        totals = r.totals
        top = ", ".join(f"{reason} {n}" for reason, n in totals.reasons.most_common(3))
        excluded = ", ".join(f"{k} {v}" for k, v in sorted(r.excluded.items()))
        if totals.written == 0:
            why = (f"read {totals.read}, rejected {totals.rejected}" + (f" ({top})" if top else "")
                   + (f"; excluded before the tasks: {excluded}" if excluded else ""))
            problems.append(f"config {r.config} wrote no rows: {why}; see {result.out / 'rejects' / r.config}")
        elif totals.read and totals.rejected / totals.read > max_reject_share:
            problems.append(f"config {r.config} rejected {totals.rejected} of {totals.read} records "
                            f"({totals.rejected / totals.read:.0%}, more than --max-reject-share "
                            f"{max_reject_share:g}): {top}; see {result.out / 'rejects' / r.config}")
    return problems


def _totals(layout: OutputLayout, config: str, tasks: list[Task], config_hash: str,
            known: dict[str, TaskStats | None]) -> BuildTotals:
    """The counts of every task; ``known`` holds the stats of tasks found finished before the run."""
    totals = BuildTotals()
    for task in tasks:
        stats = known.get(task.name) or finished_task(layout, config, task.name, config_hash)
        if stats is None:
            raise CxrdataError(f"task {config}/{task.name} did not complete; rerun the same command")
        totals.add(stats)
    return totals


def _manifest_hash(layout: OutputLayout) -> str | None:
    try:
        return json.loads(layout.manifest.read_text()).get("config_hash")
    except (OSError, ValueError):
        return None
