"""Build throughput and memory: the whole pipeline vs the raw decode+resize of the same images.

Generates a synthetic MIMIC-CXR-JPG tree (``cxrdata sample-data``'s writer) with N full-size
images (2544x3056-like), then

1. raw: one process reads, decodes (reduced-scale) and resizes every image to 512, nothing else;
2. pipeline: ``build mimic --views all`` with W workers (metadata joins, reports, decode, resize,
   JPEG encode, Parquet writing, markers, manifest).

It prints images/s per worker beside the raw images/s per core, their ratio (target >= 85%), and
peak RSS of the main process and of the largest worker, for each N (peak memory should not grow
with N: records are streamed to the shards in row groups). Run by hand:

    python benchmarks/build_throughput.py --images 60 240 --workers 1 2
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import cv2

from cxrdata.imaging.raster import decode_jpeg, resize_longest_side
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sample.mimic import write_mimic_sample
from cxrdata.sources.mimic import MimicSource


def raw_rate(paths: list[Path], max_side: int = 512) -> float:
    """Images/s of read + decode + resize alone, in this process, on one core."""
    cv2.setNumThreads(1)
    start = time.perf_counter()
    for path in paths:
        raster = decode_jpeg(path.read_bytes(), max_side=max_side)
        resize_longest_side(raster.pixels, max_side)
    return len(paths) / (time.perf_counter() - start)


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[60, 240], help="full-size images per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated trees here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cxrdata-bench-")) if args.keep is None else args.keep
    print(f"{'images':>7} {'full':>5} {'workers':>7} {'raw/core':>9} {'pipe/worker':>11} {'ratio':>6} "
          f"{'wall s':>7} {'image stage':>11} {'main MB':>8} {'worker MB':>9}")
    for n in args.images:
        root = work / f"mimic-{n}"
        if not root.exists():
            t0 = time.perf_counter()
            sample = write_mimic_sample(root, subjects=n, seed=1, full_size_images=n, defects=False)
            print(f"# generated {sample.images} images ({n} full size) in {time.perf_counter() - t0:.0f} s")
        paths = sorted((root / "files").rglob("*.jpg"))
        raw = raw_rate(paths)
        for workers in args.workers:
            out = work / f"out-{n}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            result = build([MimicSource(root=root, views=())],
                           BuildOptions(out=out, workers=workers, quiet=True, tasks=max(4, 2 * workers)))
            wall = time.perf_counter() - t0
            totals = result.results[0].totals
            per_worker = totals.written / wall / workers
            image_stage = totals.stages["image"]
            print(f"{len(paths):>7} {n:>5} {workers:>7} {raw:>9.1f} {per_worker:>11.1f} {per_worker / raw:>6.0%} "
                  f"{wall:>7.1f} {image_stage.records_in / image_stage.seconds:>9.1f}/s "
                  f"{peak_mb(resource.RUSAGE_SELF):>8.0f} {peak_mb(resource.RUSAGE_CHILDREN):>9.0f}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
