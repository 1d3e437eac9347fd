"""Image build throughput in CPU seconds: the pipeline against raw loops over the same full-size JPEGs.

``compare`` (the default) writes a MIMIC-CXR-JPG-shaped tree of ``--images`` full-size JPEGs
(:mod:`mimic_tree`, ``images="full"``: 2-3k px radiographs, hard-linked from a pool) and then, interleaved,
``--repeats`` rounds of, each in a fresh interpreter (:mod:`measure`):

* ``raw``: the image stage's own operations in one process and nothing else: ``read_file``, the same
  reduced-scale ``decode_jpeg``, ``resize_longest_side`` and ``encode`` (JPEG quality 95), each op timed;
* ``opencv``: the script a researcher would write: ``cv2.imread`` (grayscale), ``cv2.resize`` INTER_AREA,
  ``cv2.imencode`` quality 95;
* ``pil``: the same with Pillow: ``Image.open``, ``thumbnail`` (which lets libjpeg decode at reduced scale),
  ``save`` quality 95;
* ``build W``: ``cxrdata build mimic --views all --image-size SIZE --workers W`` for each ``--workers``.

The builds count the CPU seconds of every process (driver, workers, start-up, Parquet, manifest); the
scripts count their loop only (``process_time`` around it), which favours the scripts. It prints medians:
images per CPU-second, the paired ratios of CPU per image (build / raw, build / opencv, build / pil; one
ratio per round, then the median), each stage's share of the workers' task time (task markers) applied to
the workers' CPU, the raw loop's per-op split, and peak RSS of the driver and of a worker. Each round also
builds a tree of ``--small-images`` images: the difference of the two builds' CPU, per extra image, is the
per-core rate without the fixed start-up (interpreters, imports, planning), which is what a large build
sees. OpenCV runs on one thread everywhere (the pipeline's workers set ``cv2.setNumThreads(1)``).

``raw`` measures your own machine's per-core rate on your own files (any folder of JPEGs, e.g. a
MIMIC-CXR-JPG ``files/`` tree; ``--limit`` files spread evenly over the sorted list):

    python benchmarks/build_throughput.py --images 1500 --workers 1 2 --repeats 3
    python benchmarks/build_throughput.py raw --root /data/mimic-cxr-jpg/2.0.0/files --limit 1000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import measure
import mimic_tree

OPENCV = """
import json, time
from pathlib import Path
import cv2
cv2.setNumThreads(1)
paths = json.loads(Path({paths!r}).read_text())
t0 = time.process_time()
for path in paths:
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    scale = {side} / max(image.shape)
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 95])
print(json.dumps({{"images": len(paths), "loop_cpu": time.process_time() - t0}}))
"""

PIL = """
import io, json, time
from pathlib import Path
from PIL import Image
paths = json.loads(Path({paths!r}).read_text())
t0 = time.process_time()
for path in paths:
    with Image.open(path) as image:
        image.thumbnail(({side}, {side}))
        image.save(io.BytesIO(), "JPEG", quality=95)
print(json.dumps({{"images": len(paths), "loop_cpu": time.process_time() - t0}}))
"""

SCRIPTS = {"raw": measure.RAW_LOOP, "opencv": OPENCV, "pil": PIL}


def write_listing(paths: list[Path], path: Path) -> Path:
    path.write_text(json.dumps([str(p) for p in paths]))
    return path


def spread(paths: list[Path], limit: int) -> list[Path]:
    """``limit`` of ``paths`` evenly spaced (all of them when there are fewer)."""
    if limit <= 0 or len(paths) <= limit:
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


def build_args(root: Path, out: Path, workers: int, side: int, tasks: int) -> list[str]:
    return ["build", "mimic", "--root", str(root), "--out", str(out), "--views", "all", "--image-size", str(side),
            "--workers", str(workers), "--tasks", str(tasks), "--quiet"]


def per_op(loops: list[dict]) -> dict[str, float]:
    """Median CPU seconds of each op of the raw loop."""
    return {op: statistics.median(r["ops"][op] for r in loops) for op in loops[0]["ops"]}


def raw(args: argparse.Namespace) -> None:
    """The raw loop alone, on the user's own files: their machine's images per core-second."""
    if args.root is None:
        raise SystemExit("raw needs --root (a folder of JPEG files)")
    paths = spread(sorted(args.root.rglob("*.jpg")), args.limit)
    if not paths:
        raise SystemExit(f"no *.jpg under {args.root}")
    args.work.mkdir(parents=True, exist_ok=True)
    listing = write_listing(paths, args.work / "raw-images.json")
    loops = [measure.run("python", measure.RAW_LOOP.format(paths=str(listing), side=args.image_size))
             for _ in range(args.repeats)]
    cpu = measure.median(loops, "loop_cpu")
    ops = per_op(loops)
    print(f"raw loop: {len(paths):,} images, {len(paths) / cpu:.1f} images per CPU-second "
          f"(median of {args.repeats}; {' '.join(f'{k} {v / cpu:.0%}' for k, v in ops.items())})")
    print("a build uses somewhat more CPU per image than this loop (driver, Parquet, records: "
          "`build_throughput.py compare` measures the ratio); cores x rate / ratio is a build's images/s")


def compare(args: argparse.Namespace) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tree = mimic_tree.write_tree(args.work, args.images, "full")
    paths = sorted((tree.root / "files").rglob("*.jpg"))
    listing = write_listing(paths, args.work / f"{tree.root.name}-images.json")
    print(f"# {len(paths):,} full-size JPEGs under {tree.root} (ready in {time.perf_counter() - t0:.0f} s); "
          f"--image-size {args.image_size}, {args.tasks} tasks, {args.repeats} interleaved rounds", flush=True)
    small = mimic_tree.write_tree(args.work, args.small_images, "full") if args.small_images else None
    runs: dict[str, list[dict]] = {}
    for round_ in range(args.repeats):
        for name, script in SCRIPTS.items():
            runs.setdefault(name, []).append(measure.run("python", script.format(paths=str(listing),
                                                                                side=args.image_size)))
        for workers in args.workers:
            out = args.work / f"out-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            run = measure.run("cli", build_args(tree.root, out, workers, args.image_size, args.tasks))
            run["stages"] = measure.stage_seconds(out)
            runs.setdefault(f"build {workers}", []).append(run)
            if small is not None:  # the same build of a few images: its CPU is the fixed start-up cost
                shutil.rmtree(out, ignore_errors=True)
                runs.setdefault(f"small {workers}", []).append(
                    measure.run("cli", build_args(small.root, out, workers, args.image_size, args.tasks)))
        print(f"# round {round_ + 1}: " + "  ".join(f"{k} {v[-1]['cpu']:.1f} CPU-s" for k, v in runs.items()),
              flush=True)
    (args.work / "build_throughput.json").write_text(json.dumps(runs, indent=1))
    n = len(paths)
    print(f"\n{'':>8} {'CPU s':>7} {'loop s':>7} {'img/CPU-s':>9} {'wall s':>7} {'driver MB':>9} {'worker MB':>9}")
    for name, group in runs.items():
        cpu = measure.median(group, "cpu")
        loop = measure.median(group, "loop_cpu") if "loop_cpu" in group[0] else cpu
        print(f"{name:>8} {cpu:>7.1f} {loop:>7.1f} {n / loop:>9.1f} {measure.median(group, 'wall'):>7.1f} "
              f"{measure.mb(measure.median(group, 'driver_bytes')):>9} "
              f"{measure.mb(measure.median(group, 'worker_bytes')):>9}")
    ops = per_op(runs["raw"])
    raw_cpu = measure.median(runs["raw"], "loop_cpu")
    print(f"\nraw loop per op: {'  '.join(f'{k} {v / raw_cpu:.0%}' for k, v in ops.items())} "
          f"(loop CPU {raw_cpu:.1f} s; build/script: CPU per image, paired per round, median)")
    for workers in args.workers:
        builds = runs[f"build {workers}"]
        ratios = {name: statistics.median(b["cpu"] / s["loop_cpu"] for b, s in zip(builds, runs[name], strict=True))
                  for name in SCRIPTS}
        # with one worker the build runs inline: the driver is the worker
        workers_cpu = measure.median(builds, "workers_cpu") or measure.median(builds, "cpu")
        stages = {k: statistics.median(b["stages"].get(k, 0.0) for b in builds) for k in builds[0]["stages"]}
        task_seconds = sum(stages.values())
        print(f"build --workers {workers}: {n / measure.median(builds, 'cpu'):.1f} images per CPU-second of all "
              f"processes; " + ", ".join(f"{ratios[k]:.2f}x {k}" for k in SCRIPTS)
              + f" ({1 / ratios['raw']:.0%} of the raw loop's rate)")
        print(f"    CPU: driver {measure.median(builds, 'driver_cpu'):.1f} s, workers {workers_cpu:.1f} s; "
              f"stages (share of task time x workers' CPU): "
              + "  ".join(f"{k} {v / task_seconds:.0%} ({workers_cpu * v / task_seconds:.1f} s)"
                          for k, v in stages.items())
              + f"; decode (raw loop's) = {ops['decode'] / workers_cpu:.0%} of the workers' CPU")
        if small is not None:
            marginal(n - args.small_images, builds, runs[f"small {workers}"], runs)


def marginal(extra: int, builds: list[dict], smalls: list[dict], runs: dict[str, list[dict]]) -> None:
    """CPU per image without the fixed start-up: (build of N - build of a few) / (N - a few), paired per round."""
    per_image = [(b["cpu"] - s["cpu"]) / extra for b, s in zip(builds, smalls, strict=True)]
    n = runs["raw"][0]["images"]
    ratios = {name: statistics.median(p / (r["loop_cpu"] / n) for p, r in zip(per_image, runs[name], strict=True))
              for name in SCRIPTS}
    print(f"    without start-up ({statistics.median(s['cpu'] for s in smalls):.1f} CPU-s, the build of "
          f"{n - extra} images): {1 / statistics.median(per_image):.1f} images per CPU-second (the per-core rate); "
          + ", ".join(f"{ratios[k]:.2f}x {k}" for k in SCRIPTS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("compare", "raw"), default="compare")
    parser.add_argument("--images", type=int, default=1500, help="compare: full-size images in the tree")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="compare: --workers of the builds")
    parser.add_argument("--small-images", type=int, default=60,
                        help="compare: also build a tree of this many images each round, to subtract the fixed "
                             "start-up cost (0: off)")
    parser.add_argument("--tasks", type=int, default=8, help="compare: --tasks of the builds (fixed)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--image-size", type=int, default=512, help="the longest side stored")
    parser.add_argument("--root", type=Path, default=None, help="raw: a folder of JPEG files")
    parser.add_argument("--limit", type=int, default=1000, help="raw: at most this many files (0: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxrdata-throughput"),
                        help="trees, listings and build outputs (kept for the next run)")
    args = parser.parse_args()
    (raw if args.mode == "raw" else compare)(args)


if __name__ == "__main__":
    main()
