"""The language stage inside a real build: records (and reports) per CPU-second of `locate` (issue 16: >= 2,000).

    python benchmarks/language_stage_throughput.py --root MIMIC_ROOT [--runs 3] [--baseline OLD_CHECKOUT]
    python benchmarks/language_stage_throughput.py --subjects 2000   # writes a sample tree first
    python benchmarks/language_stage_throughput.py --subjects 2000 --real-text indiana_reports.csv

Each run is a fresh Python process that plans and runs the real build, ``cxrdata build mimic --recipe
ldm-prompts --extractor rules`` (``--image-format path`` unless ``--image-format`` says otherwise, so
the run is about text), with ONE worker, so every stage runs in that process: the same planning, source
rows, report reading, ``locate`` stage (setup included: rules, regexes, YAML) and shard writing as any
build. The process measures the CPU time (``time.process_time``) spent inside the locate stage's
``setup`` and ``run`` calls, and its own CPU time for the whole build (``resource.getrusage``, self and
children). (Planning, untimed here, already loads the rule extractor's YAML; a worker of a many-worker
build pays that once more, a fraction of a second.)

Printed per code tree: the median over ``--runs`` of records per locate CPU-second, distinct reports
per locate CPU-second (several frontal images of a study share one report), and records per CPU-second
of the whole build. With ``--baseline DIR`` the runs of DIR's code (another checkout, put first on
PYTHONPATH) and of this checkout alternate, so both see the same machine load; the ratio of the two
medians is printed. Results are in the OUT of each run (removed afterwards) and are not compared here:
tests/test_golden.py and tests/test_language_corpus.py check what the stage writes.

The sample's reports are made from a small phrase vocabulary, so their sentences repeat far more than
real ones, and the stage's per-sentence caches profit. ``--real-text CSV`` gives a harder, more honest
figure: a copy of the tree (images hard-linked) whose single-pathology studies get real public report
text instead, the findings of one and the impression of another report of the Open-i chest X-ray
collection (Indiana University; ``indiana_reports.csv``: uid, ..., findings, impression), each naming the
study's pathology (any certainty); the share of distinct sentences is printed.
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

def timed_setup():
    t = time.process_time()
    try:
        return setup()
    finally:
        spent[0] += time.process_time() - t

setup = stage.setup
stage.run, stage.setup = timed, timed_setup
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


def real_text_root(root: Path, csv_path: Path) -> Path:
    """A hard-linked copy of ``root`` whose single-pathology studies carry real report text (see above)."""
    import csv

    import polars as pl

    from cxrdata.sources.mimic import study_folder
    from cxrdata.text.mentions import mentions_pathology
    from cxrdata.text.sections import normalize_whitespace
    from cxrdata.vocabulary import pathologies, positive_pathologies

    out = Path(tempfile.gettempdir()) / f"cxrdata-language-bench-real-{root.name}"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(root, out, copy_function=os.link)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = [(r["findings"], r["impression"]) for r in csv.DictReader(handle) if r["findings"] and r["impression"]]
    naming = {p: [r for r in rows if mentions_pathology(f"{r[0]} {r[1]}", p)] for p in pathologies()}
    used: dict[str, int] = dict.fromkeys(naming, 0)
    labels = pl.read_csv(out / "mimic-cxr-2.0.0-chexpert.csv.gz", infer_schema_length=0)
    sentences: list[str] = []
    for row in labels.iter_rows(named=True):
        positive = positive_pathologies(row)
        report = out / f"{study_folder(int(row['subject_id']), int(row['study_id']))}.txt"
        if len(positive) != 1 or not report.exists() or not naming[positive[0]]:
            continue
        found, i = naming[positive[0]], used[positive[0]]
        used[positive[0]] += 1
        findings, impression = found[i % len(found)][0], found[(i * 7 + 3) % len(found)][1]
        report.unlink()  # a hard link: never write through it into the original tree
        report.write_text(f"                                 FINAL REPORT\n FINDINGS:  {findings}\n \n"
                          f" IMPRESSION:  {impression}\n", encoding="utf-8")
        sentences += normalize_whitespace(f"{findings}\n\n{impression}").replace("\n", " ").split(". ")
    print(f"real text: {sum(used.values())} reports from {len(rows)} Open-i reports; about "
          f"{len(set(sentences)) / max(len(sentences), 1):.0%} of their sentences distinct", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", type=Path, help="a MIMIC-CXR-JPG tree with reports")
    where.add_argument("--subjects", type=int, help="write (once, into CXRDATA_CACHE) a sample of this many")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-format", default="path", choices=["path", "jpeg", "png"])
    parser.add_argument("--baseline", type=Path, help="another checkout whose code runs interleaved with this one")
    parser.add_argument("--real-text", type=Path, help="indiana_reports.csv: put real report text into a copy")
    args = parser.parse_args()
    root = args.root if args.root is not None else sample_root(args.subjects)
    if args.real_text is not None:
        root = real_text_root(root, args.real_text)
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
