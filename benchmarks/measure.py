"""Measuring a command honestly: CPU seconds of every process it ran, and peak memory per process.

A command runs in a fresh interpreter (:data:`WRAPPER`) that executes it in-process and, meanwhile, reads
each descendant's ``VmHWM`` (the kernel's resident high-water mark of the process's own address space,
reset by ``exec``, unlike ``ru_maxrss``, which Linux carries over from the parent across fork and exec).
CPU time is ``getrusage(RUSAGE_CHILDREN)`` of this process around the run: the wrapper plus every worker
it waited for (``driver_cpu`` and ``workers_cpu`` split it: the wrapper's own, which includes the driver of
an in-process build, and that of the processes it waited for). Wall time is reported too, but on a shared
machine only CPU seconds compare.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WRAPPER = r"""
import json, os, resource, sys, threading, time
import psutil

def hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0

peaks, stop = {}, threading.Event()
def poll():
    me = psutil.Process()
    while not stop.is_set():
        try:
            for child in me.children(recursive=True):
                peaks[child.pid] = max(peaks.get(child.pid, 0), hwm(child.pid))
        except psutil.Error:
            pass
        stop.wait(0.2)  # a high-water mark: a slower poll misses only a process gone within 0.2 s

threading.Thread(target=poll, daemon=True).start()
kind, args = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
code = 0
if kind == "cli":
    from cxrdata.cli import main
    try:
        main(args, standalone_mode=False)
    except SystemExit as exc:
        code = exc.code or 0
else:  # "python": a snippet that may print one JSON object of its own figures
    exec(args, {"__name__": "__snippet__"})
wall = time.perf_counter() - t0
stop.set()
own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print("MEASURE " + json.dumps({"wall": wall, "driver_bytes": hwm(os.getpid()),
                               "worker_bytes": max(peaks.values(), default=0), "code": code,
                               "driver_cpu": own.ru_utime + own.ru_stime,
                               "workers_cpu": waited.ru_utime + waited.ru_stime}))
"""


def run(kind: str, args: Sequence[str] | str, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``cxrdata ARGS`` (kind ``cli``) or a Python snippet (kind ``python``) and measure it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", WRAPPER, kind, json.dumps(args)], capture_output=True, text=True,
                          cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = done.stdout.splitlines()
    measured = next((line for line in reversed(lines) if line.startswith("MEASURE ")), None)
    if done.returncode or measured is None:
        raise RuntimeError(f"{kind} {args!r} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(measured.removeprefix("MEASURE "))
    if figures["code"]:
        raise RuntimeError(f"{kind} {args!r} exited {figures['code']}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    extra = [json.loads(line) for line in lines if line.startswith("{")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**figures, "cpu": cpu, **(extra[-1] if extra else {})}


# The image stage's own operations on each file, in one process (``paths``: a JSON list of files): the read,
# the reduced decode, the resize and the JPEG encode of ``JpegImageStage.store``, each op's CPU seconds apart.
RAW_LOOP = """
import json, time
from pathlib import Path
import cv2
from cxrdata.imaging.raster import decode_jpeg, encode, resize_longest_side
from cxrdata.imaging.stages import read_file
cv2.setNumThreads(1)
paths = [Path(p) for p in json.loads(Path({paths!r}).read_text())]
ops = dict.fromkeys(("read", "decode", "resize", "encode"), 0.0)
clock = time.process_time
t0 = clock()
for path in paths:
    t = clock(); data = read_file(path)
    u = clock(); raster = decode_jpeg(data, max_side={side})
    v = clock(); pixels = resize_longest_side(raster.pixels, {side})
    w = clock(); encode(pixels, "jpeg", 95)
    x = clock()
    ops["read"] += u - t; ops["decode"] += v - u; ops["resize"] += w - v; ops["encode"] += x - w
print(json.dumps({{"images": len(paths), "loop_cpu": clock() - t0, "ops": ops}}))
"""


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def stage_seconds(out: Path) -> dict[str, float]:
    """Seconds per stage summed over every task marker of a build, plus ``write`` (task time outside stages)."""
    seconds: dict[str, float] = {}
    for path in sorted((out / "tasks").glob("*/*.json")):
        stats = json.loads(path.read_text())["stats"]
        for name, timing in stats["stages"].items():
            seconds[name] = seconds.get(name, 0.0) + timing["seconds"]
        seconds["write"] = seconds.get("write", 0.0) + stats["seconds"] - sum(
            t["seconds"] for t in stats["stages"].values())
    return seconds


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"
