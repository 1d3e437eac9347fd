"""Helpers shared by the tests (a module name no installed package uses: radgraph ships a `tests`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

# The public sample report of MIMIC-CXR's documentation (FORMATS.md section 1.5), verbatim.
SAMPLE_REPORT = (
    "                                 FINAL REPORT\n"
    " EXAMINATION:  CHEST (PA AND LAT)\n"
    " \n"
    " INDICATION:  ___ year old woman with ?pleural effusion  // ?pleural effusion\n"
    " \n"
    " TECHNIQUE:  Chest PA and lateral\n"
    " \n"
    " COMPARISON:  ___\n"
    " \n"
    " FINDINGS: \n"
    " \n"
    " Cardiac size cannot be evaluated.  Large left pleural effusion is new.  Small\n"
    " right effusion is new.  The upper lungs are clear.  Right lower lobe opacities\n"
    " are better seen in prior CT.  There is no pneumothorax.  There are mild\n"
    " degenerative changes in the thoracic spine\n"
    " \n"
    " IMPRESSION: \n"
    " \n"
    " Large left pleural effusion\n"
)


def read_records(out: Path, config: str) -> dict[str, dict]:
    """Every written record of a config, keyed by id (via pyarrow, independent of datasets)."""
    import pyarrow.parquet as pq

    records: dict[str, dict] = {}
    for path in sorted((out / "data" / config).glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            assert row["id"] not in records, f"duplicate record {row['id']}"
            records[row["id"]] = row
    return records


def metadata(sample) -> pl.DataFrame:
    return pl.read_csv(sample.root / "mimic-cxr-2.0.0-metadata.csv.gz", infer_schema=False)


def expected_rejects(sample, views=("PA", "AP")) -> dict[str, str]:
    """dicom_id -> reason, in stage order (row -> report -> image), from the sample's known defects."""
    expected = {}
    for row in metadata(sample).iter_rows(named=True):
        if views and row["ViewPosition"] not in views:
            continue
        dicom_id = row["dicom_id"]
        if dicom_id == sample.missing_split:
            expected[dicom_id] = "split_missing"
        elif int(row["study_id"]) == sample.missing_report:
            expected[dicom_id] = "report_missing"
        elif dicom_id == sample.truncated_jpeg:
            expected[dicom_id] = "image_truncated"
        elif dicom_id == sample.corrupt_jpeg:
            expected[dicom_id] = "image_corrupt"
    return expected


def read_rejects(out: Path, config: str) -> dict[str, str]:
    rows = [r for p in sorted((out / "rejects" / config).glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return {r["record_id"]: r["reason"] for r in rows}

# The 12 columns of mimic-cxr-2.0.0-metadata.csv.gz, in their real order (FORMATS.md 1.2).
METADATA_HEADER = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
    "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)


def write_mini_mimic_metadata(root: Path, size: Callable[[int, int], tuple[int, int]]) -> Path:
    """Only MIMIC-CXR-JPG's metadata file (what ImaGenome's writer reads): 6 patients x 2 studies x
    (PA or AP + LATERAL), ``size(patient, study) -> (width, height)``; JPEGs are up to the caller."""
    from cxrdata.sample import tables
    from cxrdata.sources.mimic import METADATA

    rows = []
    for s in range(6):
        subject = 10000032 + 1111 * s
        for st in range(2):
            study = 50000000 + 100 * s + st
            width, height = size(s, st)
            for view in ("PA" if s % 2 else "AP", "LATERAL"):
                dicom = f"{s:08x}-{st:08x}-{len(view):08x}-00000000-4e384014"
                rows.append([dicom, subject, study, "CHEST", view, height, width, 21800506 + st * 100,
                             80556.875 + st, "CHEST", "x", "Erect"])
    tables.write_csv(root / METADATA[0], METADATA_HEADER, rows)
    return root


def build_with(dataset: str, out: Path, *, workers: int = 1, **options):
    """``cxrdata.build`` of ``dataset`` into ``out``, quiet, one worker unless told (the API the CLI calls)."""
    import cxrdata

    return cxrdata.build(dataset, out=out, workers=workers, quiet=True, **options)


def plan_of(dataset: str, *, recipe=None, config: str | None = None, out: Path | None = None, **options):
    """The plan of one config of a build (its source and stages), without running it."""
    import tempfile

    from cxrdata.api import plans

    found = plans(dataset, out=out or Path(tempfile.gettempdir()) / "cxrdata-unused-out", recipe=recipe, **options)
    return found[0] if config is None else next(p for p in found if p.config == config)


def run_plan(plan) -> tuple[dict, dict]:
    """A plan's records through its stages in this process: (kept by id, rejects by record id)."""
    from cxrdata.stage import StageChain

    plan.source.check()
    chain = StageChain(plan.stages)
    chain.setup()
    records, _ = plan.records()
    kept, rejects = chain.run(list(records))
    return {r["id"]: r for r in kept}, {r.record_id: r for r in rejects}


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str:
    """The headless browser's executable; skips the test (with the reason) where none is installed."""
    import shutil

    import pytest

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium is not installed: apt-get install -y chromium (CI's .ci/run installs it)")


def dump_dom(page: Path, profile: Path, fragment: str = "") -> str:
    """The DOM of ``page`` (a local file, opened with ``#fragment``) after its scripts ran, from headless Chromium."""
    import subprocess

    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    run = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout
