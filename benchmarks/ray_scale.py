"""Bounded memory: peak RSS of the driver and of a worker, for both engines, at two sizes of full-size images.

For each ``--images`` size, a MIMIC-CXR-JPG-shaped tree whose images are all full resolution (:mod:`mimic_tree`,
``images="full"``) is built by each engine with the same records per task (so the number of tasks grows with
the input), each build in a fresh interpreter (:mod:`measure`: ``VmHWM`` of the driver and of the largest
descendant, CPU seconds of the processes it waited for). If no engine holds the dataset's images, the peaks
stay flat while the input grows. A Ray process's peak counts the pages of Ray's shared object store it
touched. Run by hand:

    python benchmarks/ray_scale.py --images 200 800 --engines local ray --image-size 512 0
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import measure
import mimic_tree


def build_args(root: Path, out: Path, engine: str, workers: int, tasks: int, size: int) -> list[str]:
    return ["build", "mimic", "--root", str(root), "--out", str(out), "--views", "all", "--image-size", str(size),
            "--engine", engine, "--workers", str(workers), "--tasks", str(tasks), "--quiet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs=2, default=[200, 800], help="the two input sizes")
    parser.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-task", type=int, default=40, help="records per task (kept constant)")
    parser.add_argument("--image-size", type=int, nargs="+", default=[512, 0],
                        help="stored size (0: the original JPEG bytes, the heaviest records)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cxrdata-throughput"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'engine':>6} {'size':>5} {'images':>7} {'tasks':>5} {'wall s':>7} {'CPU s':>6} {'driver MB':>9} "
          f"{'worker MB':>9}")
    for images in args.images:
        tree = mimic_tree.write_tree(args.work, images, "full")
        tasks = max(1, images // args.per_task)
        for size in args.image_size:
            for engine in args.engines:
                out = args.work / f"out-{engine}"
                shutil.rmtree(out, ignore_errors=True)
                r = measure.run("cli", build_args(tree.root, out, engine, args.workers, tasks, size))
                print(f"{engine:>6} {size:>5} {images:>7} {tasks:>5} {r['wall']:>7.1f} {r['cpu']:>6.1f} "
                      f"{measure.mb(r['driver_bytes']):>9} {measure.mb(r['worker_bytes']):>9}", flush=True)
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
