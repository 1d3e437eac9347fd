"""Bounded memory: peak RSS of both engines at two input sizes, every image full size.

A base sample whose images are all full resolution (about 1.2 MB JPEGs, 2500x3000-like) is replicated
(see ``scale_throughput.py``) to two sizes, ``--copies`` apart, and built by each engine in a fresh
interpreter with the same number of records per task (so the number of tasks grows with the input).
If no engine holds the dataset's images, the peaks of the driver and of the largest worker stay flat
while the input grows; what does grow is the driver's list of raw records (metadata: ~1-2 KB each).
RSS of Ray processes counts the pages of Ray's shared object store they touched. Run by hand:

    python benchmarks/ray_scale.py --copies 2 8 --image-size 512 0
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_throughput import TreeMonitor, replicate

from cxrdata.sample.mimic import write_mimic_sample

BUILD = """
import json, sys, time
from pathlib import Path
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sources.mimic import MimicSource
root, out, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
workers, tasks, size = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
t0 = time.perf_counter()
result = build([MimicSource(root=root, image_size=size)],
               BuildOptions(out=out, workers=workers, quiet=True, engine=engine, tasks=tasks))
totals = result.results[0].totals
print(json.dumps({"wall": time.perf_counter() - t0, "read": totals.read, "bytes": totals.bytes_written}))
"""


def full_size_base(root: Path, subjects: int) -> int:
    """A sample whose every image is full size (the plan of a seed does not depend on the sizes)."""
    if not root.exists():
        probe = write_mimic_sample(root.with_name(root.name + "-probe"), subjects=subjects, seed=1,
                                   full_size_images=0, defects=False)
        shutil.rmtree(probe.root)
        write_mimic_sample(root, subjects=subjects, seed=1, full_size_images=probe.images, defects=False)
    return len(list((root / "files").rglob("*.jpg")))


def measure(root: Path, out: Path, engine: str, workers: int, tasks: int, size: int) -> dict:
    import subprocess

    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-c", BUILD, str(root), str(out), engine, str(workers), str(tasks),
                             str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMonitor(proc.pid) as monitor:
        stdout, stderr = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"build failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(main_mb=monitor.peak_main / 2**20, worker_mb=monitor.peak_worker / 2**20,
                  tree_mb=monitor.peak_total / 2**20)
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=20, help="subjects of the full-size base sample")
    parser.add_argument("--copies", type=int, nargs=2, default=[2, 8], help="the two input sizes, in base copies")
    parser.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-task", type=int, default=40, help="frontal records per task (kept constant)")
    parser.add_argument("--image-size", type=int, nargs="+", default=[512, 0],
                        help="stored size (0: the original JPEG bytes, the heaviest records)")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cxrdata-mem-"))
    base = work / f"full-{args.subjects}"
    t0 = time.perf_counter()
    n_base = full_size_base(base, args.subjects)
    print(f"# base: {n_base} full-size images ({time.perf_counter() - t0:.0f} s)")
    print(f"{'engine':>6} {'size':>5} {'images':>7} {'MB in':>6} {'tasks':>5} {'wall s':>7} "
          f"{'main MB':>8} {'worker MB':>9} {'tree MB':>8}")
    for copies in args.copies:
        root = work / f"full-{args.subjects}-x{copies}"
        counts_file = root / "counts.json"
        if not counts_file.exists():
            shutil.rmtree(root, ignore_errors=True)
            counts_file.parent.mkdir(parents=True)
            counts_file.write_text(json.dumps(replicate(base, root, copies)))
        counts = json.loads(counts_file.read_text())
        size_in = sum(p.stat().st_size for p in (root / "files").rglob("*.jpg")) / 2**20
        tasks = max(1, counts["frontal"] // args.per_task)
        for size in args.image_size:
            for engine in args.engines:
                r = measure(root, work / "out", engine, args.workers, tasks, size)
                print(f"{engine:>6} {size:>5} {r['read']:>7} {size_in:>6.0f} {tasks:>5} {r['wall']:>7.1f} "
                      f"{r['main_mb']:>8.0f} {r['worker_mb']:>9.0f} {r['tree_mb']:>8.0f}", flush=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
