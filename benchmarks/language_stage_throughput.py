"""The language stage inside a real build: records (and reports) per CPU-second of `locate` (issue 16: >= 2,000).

    python benchmarks/language_stage_throughput.py --root MIMIC_ROOT [--runs 3] [--baseline OLD_CHECKOUT]
    python benchmarks/language_stage_throughput.py --subjects 2000   # writes a sample tree first

Each run is a fresh Python process that plans and runs the real build, ``cxrdata build mimic --recipe
ldm-prompts --extractor rules`` (``--image-format path`` unless ``--image-format`` says otherwise, so
the run is about text), with ONE worker, so every stage runs in that process: the same planning, source
rows, report reading, ``locate`` stage (setup included: rules, regexes, YAML) and shard writing as any
build. The process measures the CPU time (``time.process_time``) spent inside the locate stage's
``run`` calls, and its own CPU time for the whole build (``resource.getrusage``, self and children).

Printed per code tree: the median over ``--runs`` of records per locate CPU-second, distinct reports
per locate CPU-second (several frontal images of a study share one report), and records per CPU-second
of the whole build. With ``--baseline DIR`` the runs of DIR's code (another checkout, put first on
PYTHONPATH) and of this checkout alternate, so both see the same machine load; the ratio of the two
medians is printed. Results are in the OUT of each run (removed afterwards) and are not compared here:
tests/test_golden.py and tests/test_language_corpus.py check what the stage writes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child process; uses only API that older checkouts have too (api.plans, pipeline.build).
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import cxrdata, cxrdata.api as api
from cxrdata.pipeline.build import BuildOptions, build

root, out, image_format = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
started = time.process_time()
plans = api.plans("mimic", out=out, recipe="ldm-prompts", root=root, extractor="rules", image_format=image_format)
stage = next(s for s in plans[0].stages if s.name == "locate")
spent, records, reports = [0.0], [0], set()
run = stage.run

def timed(batch):
    reports.update(str(r.get("study_id")) for r in batch)
    records[0] += len(batch)
    t = time.process_time()
    try:
        return run(batch)
    finally:
        spent[0] += time.process_time() - t

stage.run = timed
result = build(plans, BuildOptions(out=out, workers=1, quiet=True))
usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
total = sum(u.ru_utime + u.ru_stime for u in usage)
written = sum(r.totals.written for r in result.results)
print(json.dumps({"code": str(Path(cxrdata.__file__).parent.parent), "records": records[0],
                  "reports": len(reports), "locate_cpu_s": spent[0], "build_cpu_s": total,
                  "written": written}))
"""


def one_run(code: Path, root: Path, image_format: str) -> dict:
    """One fresh build process with ``code`` first on the path; its measurements."""
    out = Path(tempfile.mkdtemp(prefix="cxrdata-language-bench-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
    try:
        # -P and cwd: nothing but PYTHONPATH decides which cxrdata is imported
        done = subprocess.run([sys.executable, "-P", "-c", CHILD, str(root), str(out / "out"), image_format],
                              env=env, cwd=out, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"run with {code} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def summary(runs: list[dict]) -> dict[str, float]:
    return {
        "records": runs[0]["records"],
        "reports": runs[0]["reports"],
        "records_per_locate_cpu_s": statistics.median(r["records"] / r["locate_cpu_s"] for r in runs),
        "reports_per_locate_cpu_s": statistics.median(r["reports"] / r["locate_cpu_s"] for r in runs),
        "records_per_build_cpu_s": statistics.median(r["records"] / r["build_cpu_s"] for r in runs),
        "locate_share_of_build_cpu": statistics.median(r["locate_cpu_s"] / r["build_cpu_s"] for r in runs),
    }


def sample_root(subjects: int) -> Path:
    from cxrdata.sample.mimic import write_mimic_sample

    cache = Path(os.environ.get("CXRDATA_CACHE", Path(tempfile.gettempdir()) / "cxrdata-cache"))
    root = cache / f"bench-language-mimic-{subjects}"
    if not (root / "mimic-cxr-2.0.0-metadata.csv.gz").exists():
        print(f"writing a {subjects}-subject MIMIC sample to {root} ...", flush=True)
        write_mimic_sample(root, subjects=subjects, full_size_images=0)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", type=Path, help="a MIMIC-CXR-JPG tree with reports")
    where.add_argument("--subjects", type=int, help="write (once, into CXRDATA_CACHE) a sample of this many")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-format", default="path", choices=["path", "jpeg", "png"])
    parser.add_argument("--baseline", type=Path, help="another checkout whose code runs interleaved with this one")
    args = parser.parse_args()
    root = args.root if args.root is not None else sample_root(args.subjects)
    trees = [args.baseline.resolve(), ROOT] if args.baseline else [ROOT]
    runs: dict[Path, list[dict]] = {tree: [] for tree in trees}
    for i in range(args.runs):
        for tree in trees:
            runs[tree].append(one_run(tree, root, args.image_format))
            r = runs[tree][-1]
            print(f"run {i + 1} {r['code']}: {r['records']} records ({r['reports']} reports), "
                  f"locate {r['locate_cpu_s']:.2f} CPU-s, build {r['build_cpu_s']:.2f} CPU-s", flush=True)
    results = {str(tree): summary(found) for tree, found in runs.items()}
    for tree, s in results.items():
        print(f"\n{tree}: median of {args.runs} runs over {s['records']} records / {s['reports']} reports")
        print(f"  locate: {s['records_per_locate_cpu_s']:8,.0f} records/CPU-s  "
              f"{s['reports_per_locate_cpu_s']:8,.0f} reports/CPU-s")
        print(f"  build:  {s['records_per_build_cpu_s']:8,.0f} records/CPU-s  "
              f"(locate {s['locate_share_of_build_cpu']:.0%} of the build's CPU)")
    if args.baseline:
        old, new = (results[str(t)]["records_per_locate_cpu_s"] for t in trees)
        print(f"\nlocate speed-up over {trees[0]}: {new / old:.1f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
