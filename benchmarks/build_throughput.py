"""Build throughput and memory: the whole pipeline vs the raw decode+resize of the same images.

Generates a synthetic MIMIC-CXR-JPG tree (``cxrdata sample-data``'s writer) whose images are all
full size (2544x3056-like), then

1. raw: one process reads, decodes (reduced-scale) and resizes every image to 512, nothing else;
2. pipeline: ``build mimic --views all`` with W workers (metadata joins, reports, decode, resize,
   JPEG encode, Parquet writing, markers, manifest).

It prints images/s per worker beside the raw images/s per core, their ratio (target >= 85%), and
peak RSS of the main process and of the largest worker, for each N (peak memory should not grow
with N: records are streamed to the shards in row groups). Run by hand:

    python benchmarks/build_throughput.py --subjects 20 80 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from cxrdata.imaging.raster import decode_jpeg, resize_longest_side
from cxrdata.sample.mimic import write_mimic_sample


def raw_rate(paths: list[Path], max_side: int = 512) -> float:
    """Images/s of read + decode + resize alone, in this process, on one core."""
    cv2.setNumThreads(1)
    start = time.perf_counter()
    for path in paths:
        raster = decode_jpeg(path.read_bytes(), max_side=max_side)
        resize_longest_side(raster.pixels, max_side)
    return len(paths) / (time.perf_counter() - start)


# Each build runs in a fresh interpreter so that its peak memory is its own, not the generator's.
BUILD = """
import json, resource, sys, time
from pathlib import Path
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sources.mimic import MimicSource
root, out, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
t0 = time.perf_counter()
result = build([MimicSource(root=root, views=())], BuildOptions(out=out, workers=workers, quiet=True,
                                                                 tasks=max(4, 2 * workers)))
wall = time.perf_counter() - t0
totals = result.results[0].totals
stage = totals.stages["image"]
print(json.dumps({"wall": wall, "written": totals.written, "image_rate": stage.records_in / stage.seconds,
                  "main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_build(root: Path, out: Path, workers: int) -> dict:
    """Build in a fresh process. Linux keeps a process's RSS high-water mark across fork and exec, so
    the build is started through GNU time (a small process) when present, whose figure then replaces
    the build's own view of its peak."""
    command = [sys.executable, "-c", BUILD, str(root), str(out), str(workers)]
    timed = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if timed:
        command = [timed, "-f", "maxrss_kb=%M", *command]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if line.startswith("maxrss_kb="):
            result["main_mb"] = int(line.split("=")[1]) / 1024
    return result


def generate(root: Path, n_subjects: int) -> int:
    """A tree whose images are all full size (the plan of a seed does not depend on the sizes)."""
    probe = write_mimic_sample(root.with_name(root.name + "-probe"), subjects=n_subjects, seed=1,
                               full_size_images=0, defects=False)
    shutil.rmtree(probe.root)
    return write_mimic_sample(root, subjects=n_subjects, seed=1, full_size_images=probe.images, defects=False).images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, nargs="+", default=[20, 80],
                        help="subjects per run (about 3 full-size images each)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated trees here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cxrdata-bench-")) if args.keep is None else args.keep
    print(f"{'images':>7} {'workers':>7} {'raw/core':>9} {'pipe/worker':>11} {'ratio':>6} "
          f"{'wall s':>7} {'image stage':>11} {'main MB':>8} {'worker MB':>9}")
    for n in args.subjects:
        root = work / f"mimic-{n}"
        if not root.exists():
            t0 = time.perf_counter()
            images = generate(root, n)
            print(f"# generated {images} full-size images in {time.perf_counter() - t0:.0f} s")
        paths = sorted((root / "files").rglob("*.jpg"))
        raw = raw_rate(paths)
        for workers in args.workers:
            out = work / f"out-{n}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            r = run_build(root, out, workers)
            per_worker = r["written"] / r["wall"] / workers
            print(f"{len(paths):>7} {workers:>7} {raw:>9.1f} {per_worker:>11.1f} {per_worker / raw:>6.0%} "
                  f"{r['wall']:>7.1f} {r['image_rate']:>9.1f}/s {r['main_mb']:>8.0f} {r['worker_mb']:>9.0f}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
