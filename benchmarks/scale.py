"""The driver at MIMIC scale: planning, a build and a no-op rerun at 50k, 150k and 377k rows.

For each size, a MIMIC-CXR-JPG-shaped tree (:mod:`mimic_tree`: the real CSV columns and proportions, images
and reports hard-linked to a small pool; tiny images by default, so that the per-record cost of the
pipeline shows rather than the decode) is written once, then, each in a fresh interpreter
(:mod:`measure`: CPU seconds of all processes, ``VmHWM`` peaks of the driver and of the largest worker):

* ``plan``: read the CSVs, join, filter and cut the records into tasks, as a build does before any task
  starts (``--repeats`` runs, medians): the whole process (interpreter, imports, planning), and the
  planning itself, after the imports;
* ``build``: ``cxrdata build mimic --views all`` with ``--workers`` (``--build-repeats`` runs), interleaved with
  a raw loop over the same files (read + the same reduced decode, resize and JPEG encode, one process);
  per-stage CPU shares come from the task markers;
* ``rerun``: the same command on the finished OUT, which has nothing to do (``--repeats`` runs).

    python benchmarks/scale.py --rows 50000 150000 377110 --workers 2
    python benchmarks/scale.py --rows 377110 --skip-build        # planning only (no images needed)

The trees are kept in ``--work`` (default /tmp/cxrdata-scale) for the next run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import measure
import mimic_tree

PLAN = """
import json, time
from pathlib import Path
from cxrdata.api import plans
from cxrdata.pipeline.partition import partition
cpu, wall = time.process_time(), time.perf_counter()
plan = plans("mimic", out=Path({out!r}), root=Path({root!r}), views=())[0]
plan.source.check()
records, excluded = plan.records()
tasks = partition(plan.config, records, plan.records_per_task())
print(json.dumps({{"records": len(records), "tasks": len(tasks), "work_cpu": time.process_time() - cpu,
                  "work_wall": time.perf_counter() - wall}}))
"""


def build_args(root: Path, out: Path, workers: int, side: int) -> list[str]:
    return ["build", "mimic", "--root", str(root), "--out", str(out), "--views", "all", "--image-size", str(side),
            "--workers", str(workers), "--quiet"]


def summary(runs: list[dict]) -> str:
    """Median wall and CPU seconds and driver peak of some runs."""
    return (f"wall {measure.median(runs, 'wall'):6.2f} s  CPU {measure.median(runs, 'cpu'):6.2f} s  "
            f"driver peak {measure.mb(measure.median(runs, 'driver_bytes'))} MB")


def image_paths(tree: mimic_tree.Tree, work: Path) -> Path:
    listing = work / f"{tree.root.name}-images.json"
    if not listing.exists():
        listing.write_text(__import__("json").dumps([str(p) for p in sorted((tree.root / "files").rglob("*.jpg"))]))
    return listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 150_000, 377_110])
    parser.add_argument("--images", choices=mimic_tree.IMAGES, default="tiny")
    parser.add_argument("--image-size", type=int, default=64, help="--image-size of the builds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of plan and rerun (medians)")
    parser.add_argument("--build-repeats", type=int, default=1, help="builds (and raw loops) per size")
    parser.add_argument("--skip-build", action="store_true", help="planning only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxrdata-scale"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        t0 = time.perf_counter()
        tree = mimic_tree.write_tree(args.work, rows, args.images)
        print(f"# {rows:,} rows: {tree.studies:,} studies, {tree.subjects:,} subjects "
              f"(tree ready in {time.perf_counter() - t0:.0f} s)", flush=True)
        out = args.work / f"out-{rows}"
        plan = [measure.run("python", PLAN.format(root=str(tree.root), out=str(out))) for _ in range(args.repeats)]
        print(f"plan    {rows:>8,} rows  {summary(plan)}  ({plan[0]['records']:,} records, {plan[0]['tasks']} tasks; "
              f"medians of {args.repeats})", flush=True)
        print(f"        the planning itself, after the imports: wall {measure.median(plan, 'work_wall'):.2f} s  "
              f"CPU {measure.median(plan, 'work_cpu'):.2f} s", flush=True)
        if args.skip_build:
            continue
        builds, loops = [], []
        for _ in range(args.build_repeats):
            shutil.rmtree(out, ignore_errors=True)
            builds.append(measure.run("cli", build_args(tree.root, out, args.workers, args.image_size)))
            builds[-1]["stages"] = measure.stage_seconds(out)
            loops.append(measure.run("python", measure.RAW_LOOP.format(paths=str(image_paths(tree, args.work)),
                                                          side=args.image_size)))
        build_cpu, loop_cpu = measure.median(builds, "cpu"), measure.median(loops, "loop_cpu")
        stages = {k: statistics.median(b["stages"].get(k, 0.0) for b in builds) for k in builds[0]["stages"]}
        total = sum(stages.values())
        worker = measure.mb(measure.median(builds, "worker_bytes"))
        print(f"build   {rows:>8,} rows  {summary(builds)}  worker peak {worker} MB  "
              f"{rows / build_cpu:,.0f} rec/CPU-s; raw loop {rows / loop_cpu:,.0f} img/CPU-s, "
              f"ratio {build_cpu / loop_cpu:.2f}x", flush=True)
        print("        stages: " + "  ".join(f"{k} {v / total:.0%}" for k, v in stages.items()), flush=True)
        rerun = [measure.run("cli", build_args(tree.root, out, args.workers, args.image_size))
                 for _ in range(args.repeats)]
        print(f"rerun   {rows:>8,} rows  {summary(rerun)}  (nothing to do; medians of {args.repeats})", flush=True)


if __name__ == "__main__":
    main()
