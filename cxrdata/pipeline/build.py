"""A build: check sources, plan tasks, skip finished ones, run the rest, write manifest and card.

Resume is marker-based (as in datatrove): a task whose marker exists for this configuration's
hash is not run again. The configuration an OUT is being built with is recorded first; running a
different configuration against the same OUT is refused rather than mixing two builds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxrdata import __version__
from cxrdata.errors import CxrdataError
from cxrdata.io.card import write_card
from cxrdata.io.layout import OutputLayout
from cxrdata.io.schema import load_schema
from cxrdata.io.stats import statistics
from cxrdata.pipeline.engine_local import run_local
from cxrdata.pipeline.manifest import build_manifest, write_manifest
from cxrdata.pipeline.progress import BuildProgress
from cxrdata.pipeline.stats import BuildTotals, TaskStats
from cxrdata.pipeline.task_runner import read_marker
from cxrdata.sources.base import Source, Task, auto_task_count, partition

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
    tasks: int | None = None  # None: decided from the number of records
    overwrite: bool = False
    quiet: bool = False
    engine: str = "local"
    address: str | None = None  # ray: the cluster to connect to (None: start a local Ray runtime)


@dataclass
class ConfigResult:
    config: str
    tasks: int
    tasks_run: int
    totals: BuildTotals


@dataclass
class BuildResult:
    out: Path
    config_hash: str
    results: list[ConfigResult] = field(default_factory=list)
    seconds: float = 0.0
    nothing_to_do: bool = False

    @property
    def output_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe_config(source: Source, n_tasks: int) -> dict[str, Any]:
    """Everything that decides a config's output; its hash keys resume and refusal."""
    schema = load_schema(source.schema)
    return {
        "dataset": source.dataset,
        "root": str(source.root),
        "schema": f"{schema.name}@{schema.version}",
        "options": source.describe(),
        "stages": [stage.fingerprint() for stage in source.stages()],
        "tasks": n_tasks,
    }


def _check_same_build(layout: OutputLayout, build_config: dict[str, Any]) -> None:
    if not layout.build_config.exists():
        return
    previous = json.loads(layout.build_config.read_text())
    if previous.get("hash") == build_config["hash"]:
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


def build(sources: list[Source], options: BuildOptions) -> BuildResult:
    """Run a build of one or more output configs into ``options.out``."""
    if options.engine not in ENGINES:
        raise CxrdataError(f"unknown engine {options.engine!r}; available: {', '.join(ENGINES)}")
    if options.address is not None and options.engine != "ray":
        raise CxrdataError("--ray-address applies only with --engine ray")
    for source in sources:
        source.check()
    layout = OutputLayout(options.out)
    with layout.lock():
        return _build_locked(sources, options, layout)


def _build_locked(sources: list[Source], options: BuildOptions, layout: OutputLayout) -> BuildResult:
    started = time.perf_counter()
    if options.overwrite:
        layout.remove_build()
    layout.clear_leftovers()

    plans: dict[str, tuple[Source, list[Task]]] = {}
    configs: dict[str, Any] = {}
    for source in sources:
        records = source.records()
        n_tasks = options.tasks or auto_task_count(len(records), source.records_per_task())
        plans[source.config] = (source, partition(source.config, records, n_tasks))
        configs[source.config] = describe_config(source, n_tasks)
    build_config = {"tool": "cxrdata", "configs": configs, "hash": _hash(configs)}
    _check_same_build(layout, build_config)
    if not layout.build_config.exists():
        layout.build_config.parent.mkdir(parents=True, exist_ok=True)
        layout.build_config.write_text(json.dumps(build_config, indent=2, sort_keys=True))

    config_hash = build_config["hash"]
    result = BuildResult(out=options.out, config_hash=config_hash)
    pending = {
        config: [t for t in tasks if read_marker(layout.marker_path(config, t.index), config_hash) is None]
        for config, (_, tasks) in plans.items()
    }
    if not any(pending.values()) and _manifest_hash(layout) == config_hash:
        result.nothing_to_do = True
        for config, (_, tasks) in plans.items():
            result.results.append(ConfigResult(config, len(tasks), 0, _totals(layout, config, tasks, config_hash)))
        result.seconds = time.perf_counter() - started
        return result

    engine = ENGINES[options.engine]
    if options.address is not None:
        engine = functools.partial(engine, address=options.address)
    with BuildProgress(quiet=options.quiet) as progress:
        for config, (source, tasks) in plans.items():
            todo = pending[config]
            progress.start(config, sum(len(t.records) for t in todo), [s.name for s in source.stages()])
            for _stats in engine(source, layout, config_hash, todo, options.workers, progress.advance):
                pass
            totals = _totals(layout, config, tasks, config_hash)
            result.results.append(ConfigResult(config, len(tasks), len(todo), totals))

    manifest = build_manifest(layout, build_config, {r.config: r.totals for r in result.results},
                              {s.config: s for s in sources}, __version__)
    for config, entry in manifest["configs"].items():
        entry["statistics"] = statistics(layout.root, config)  # from the written shards and rejects
    write_manifest(layout, manifest)
    write_card(layout, manifest)
    result.seconds = time.perf_counter() - started
    return result


def _totals(layout: OutputLayout, config: str, tasks: list[Task], config_hash: str) -> BuildTotals:
    totals = BuildTotals()
    for task in tasks:
        stats: TaskStats | None = read_marker(layout.marker_path(config, task.index), config_hash)
        if stats is None:
            raise CxrdataError(f"task {config}/{task.index:05d} did not complete; rerun the same command")
        totals.add(stats)
    return totals


def _manifest_hash(layout: OutputLayout) -> str | None:
    try:
        return json.loads(layout.manifest.read_text()).get("config_hash")
    except (OSError, ValueError):
        return None
