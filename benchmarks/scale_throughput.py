"""Scale throughput: a MIMIC-scale synthetic tree built by the local engine and by Ray Data, 1 and 2 workers.

``write_mimic_sample`` renders every image (about 23 small images/s here, 5/s at full size), too slow for
tens of thousands of studies, so a base sample (``--base-subjects``, ``--full-size`` of its images at full
resolution, the rest small, with the sample's defects) is **replicated** under new subject, study and
dicom ids until it holds ``--studies`` studies: the CSVs are rewritten, images and reports hard-linked
(every replica is decoded again: only the page cache is shared). Then each (engine, workers) build runs in
a fresh interpreter and the script prints records/s, records/s per worker, the scaling from 1 to 2 workers
and each stage's share of the time, from the task markers (``tasks/<config>/*.json``). Run by hand:

    python benchmarks/scale_throughput.py --studies 20000 --engines local ray --workers 1 2

Shared machines are noisy: the figures of one run are indicative, compare runs done back to back.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import psutil

from cxrdata.sample.mimic import write_mimic_sample
from cxrdata.sources.mimic import CHEXPERT, METADATA, SPLIT, study_folder

# ---- a MIMIC-scale tree from a small sample --------------------------------------------------------


def _read(root: Path, names: tuple[str, ...]) -> tuple[str, pl.DataFrame]:
    name = next(n for n in names if (root / n).exists())
    return name, pl.read_csv(root / name, infer_schema=False)


def _write_gz(frame: pl.DataFrame, path: Path) -> None:
    with gzip.open(path, "wb", compresslevel=1) as fh:
        frame.write_csv(fh)


def replicate(base: Path, out: Path, copies: int) -> dict[str, int]:
    """``copies`` copies of the base tree under fresh ids (8-digit subjects and studies, as MIMIC's)."""
    tables = {key: _read(base, names) for key, names in (("meta", METADATA), ("split", SPLIT), ("chex", CHEXPERT))}
    meta = tables["meta"][1]
    subjects = {s: i for i, s in enumerate(sorted(set(meta["subject_id"]) | set(tables["chex"][1]["subject_id"])))}
    studies = {s: i for i, s in enumerate(sorted(set(meta["study_id"]) | set(tables["chex"][1]["study_id"])))}
    out.mkdir(parents=True, exist_ok=True)
    frames: dict[str, list[pl.DataFrame]] = defaultdict(list)
    for r in range(copies):
        subject_map = {s: str(10_000_000 + r * len(subjects) + i) for s, i in subjects.items()}
        study_map = {s: str(50_000_000 + r * len(studies) + i) for s, i in studies.items()}
        for key, (_, frame) in tables.items():
            frame = frame.with_columns(pl.col("subject_id").replace_strict(subject_map),
                                       pl.col("study_id").replace_strict(study_map))
            if "dicom_id" in frame.columns:
                frame = frame.with_columns((pl.lit(f"{r:08x}") + pl.col("dicom_id").str.slice(8)).alias("dicom_id"))
            frames[key].append(frame)
        for row in meta.iter_rows(named=True):
            old = base / study_folder(int(row["subject_id"]), int(row["study_id"]))
            new = out / study_folder(int(subject_map[row["subject_id"]]), int(study_map[row["study_id"]]))
            new.mkdir(parents=True, exist_ok=True)
            image = old / f"{row['dicom_id']}.jpg"
            if image.exists():
                _link(image, new / f"{r:08x}{row['dicom_id'][8:]}.jpg")
            report = old.with_suffix(".txt")
            if report.exists() and not new.with_suffix(".txt").exists():
                _link(report, new.with_suffix(".txt"))
    for key, (name, _) in tables.items():
        _write_gz(pl.concat(frames[key]), out / (name if name.endswith(".gz") else name + ".gz"))
    merged = pl.concat(frames["meta"])
    return {"subjects": merged["subject_id"].n_unique(), "studies": merged["study_id"].n_unique(),
            "images": merged.height, "frontal": merged.filter(pl.col("ViewPosition").is_in(["PA", "AP"])).height}


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def scaled_tree(work: Path, studies: int, base_subjects: int, full_size: int, seed: int = 0) -> tuple[Path, dict]:
    """The replicated tree (kept in ``work`` between runs), and its counts."""
    base = work / f"base-{base_subjects}-{full_size}-{seed}"
    if not base.exists():
        t0 = time.perf_counter()
        sample = write_mimic_sample(base, subjects=base_subjects, seed=seed, full_size_images=full_size)
        print(f"# base sample: {sample.images} images of {sample.studies} studies in "
              f"{time.perf_counter() - t0:.0f} s (write_mimic_sample)")
    base_studies = pl.read_csv(base / METADATA[0], infer_schema=False)["study_id"].n_unique()
    copies = -(-studies // base_studies)
    root = work / f"scaled-{base.name}-x{copies}"
    counts_file = root / "counts.json"
    if not counts_file.exists():
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        counts = replicate(base, root, copies)
        counts_file.write_text(json.dumps(counts))
        print(f"# replicated x{copies} in {time.perf_counter() - t0:.0f} s")
    return root, json.loads(counts_file.read_text())


# ---- one build in a fresh interpreter, its process tree's memory sampled ------------------------------

BUILD = """
import json, sys, time
from pathlib import Path
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sources.mimic import MimicSource
root, out, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
workers, tasks = int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
result = build([MimicSource(root=root)], BuildOptions(out=out, workers=workers, quiet=True, engine=engine,
                                                      tasks=tasks or None))
totals = result.results[0].totals
print(json.dumps({"wall": time.perf_counter() - t0, "read": totals.read, "written": totals.written,
                  "tasks": result.results[0].tasks}))
"""


class TreeMonitor:
    """Peak RSS and CPU seconds of a process and its descendants, sampled every ``interval`` seconds.

    CPU seconds (user + system, the last value seen per process) are what a shared machine's noise does
    not inflate much; wall time is what an idle machine would show.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_total = self.peak_main = self.peak_worker = 0
        self.cpu: dict[int, tuple[float, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            rss = {}
            for proc in procs:
                try:
                    with proc.oneshot():  # a worker stays one when, exiting, its command line is gone
                        worker = self.cpu.get(proc.pid, (0.0, False))[1] or _is_worker(proc)
                        rss[proc.pid] = (proc.memory_info().rss, worker)
                        times = proc.cpu_times()
                        self.cpu[proc.pid] = (times.user + times.system, worker)
                except psutil.Error:
                    continue
            self.peak_total = max(self.peak_total, sum(r for r, _ in rss.values()))
            self.peak_main = max(self.peak_main, rss.get(self.root.pid, (0, False))[0])
            self.peak_worker = max([self.peak_worker, *(r for r, w in rss.values() if w)])
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        return sum(c for c, _ in self.cpu.values())

    @property
    def worker_cpu_seconds(self) -> float:
        return sum(c for c, w in self.cpu.values() if w)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _is_worker(proc: psutil.Process) -> bool:
    """A process that runs stages: a spawn worker of the pool, or a Ray worker (``ray::...``)."""
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing.spawn" in cmd or cmd.startswith("ray::") or "default_worker.py" in cmd


def run_build(root: Path, out: Path, engine: str, workers: int, tasks: int = 0) -> dict[str, Any]:
    """One build in a fresh interpreter: its result, wall time, peak memory (MB) and stage seconds."""
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-c", BUILD, str(root), str(out), engine, str(workers), str(tasks)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMonitor(proc.pid) as monitor:
        stdout, stderr = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"build failed ({engine}, {workers} workers):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(main_mb=monitor.peak_main / 2**20, worker_mb=monitor.peak_worker / 2**20,
                  tree_mb=monitor.peak_total / 2**20, cpu_s=monitor.cpu_seconds,
                  worker_cpu_s=monitor.worker_cpu_seconds, stages=stage_seconds(out))
    return result


def stage_seconds(out: Path) -> dict[str, float]:
    """Seconds per stage summed over the task markers, plus ``write`` (task time outside the stages)."""
    seconds: dict[str, float] = defaultdict(float)
    for path in sorted((out / "tasks").glob("*/*.json")):
        stats = json.loads(path.read_text())["stats"]
        for name, timing in stats["stages"].items():
            seconds[name] += timing["seconds"]
        seconds["write"] += stats["seconds"] - sum(t["seconds"] for t in stats["stages"].values())
    return dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--base-subjects", type=int, default=200, help="subjects of the rendered base sample")
    parser.add_argument("--full-size", type=int, default=40, help="full-resolution images in the base sample")
    parser.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", type=int, default=16, help="fixed, so that every run has the same shards")
    parser.add_argument("--work", type=Path, default=None, help="keep the trees here (default: a temp folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cxrdata-scale-"))
    root, counts = scaled_tree(work, args.studies, args.base_subjects, args.full_size)
    print(f"# tree: {counts['subjects']} subjects, {counts['studies']} studies, {counts['images']} images "
          f"({counts['frontal']} frontal, the ones built); {os.cpu_count()} CPUs here")
    print(f"{'engine':>6} {'workers':>7} {'wall s':>7} {'records':>8} {'rec/s':>7} {'rec/s/worker':>12} "
          f"{'scaling':>7} {'CPU s':>6} {'rec/CPU-s':>9} {'main MB':>8} {'worker MB':>9}  stage shares")
    for engine in args.engines:
        base_rate = None
        for workers in args.workers:
            r = run_build(root, work / f"out-{engine}-{workers}", engine, workers, args.tasks)
            rate = r["read"] / r["wall"]
            base_rate = base_rate or rate / workers
            total = sum(r["stages"].values())
            shares = " ".join(f"{k} {v / total:.0%}" for k, v in r["stages"].items())
            print(f"{engine:>6} {workers:>7} {r['wall']:>7.1f} {r['read']:>8} {rate:>7.1f} {rate / workers:>12.1f} "
                  f"{rate / workers / base_rate:>7.0%} {r['cpu_s']:>6.0f} {r['read'] / r['cpu_s']:>9.1f} "
                  f"{r['main_mb']:>8.0f} {r['worker_mb']:>9.0f}  {shares}", flush=True)
            print(f"#   task seconds {total:.0f}; CPU seconds: {r['worker_cpu_s']:.0f} in workers, "
                  f"{r['cpu_s'] - r['worker_cpu_s']:.0f} in the driver and daemons; tree peak {r['tree_mb']:.0f} MB",
                  flush=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
