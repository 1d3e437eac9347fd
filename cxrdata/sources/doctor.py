"""``cxrdata doctor``: what a download holds, what is missing or malformed, and the fix for each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.raster import decode_jpeg
from cxrdata.sources import mimic
from cxrdata.sources.csvfiles import find_file, read_text_csv, require_columns

# Official sizes of MIMIC-CXR-JPG 2.0.0/2.1.0 and the MIMIC-CXR reports (FORMATS.md, issue texts).
MIMIC_IMAGES = 377_110
MIMIC_REPORTS = 227_827
SAMPLE_DECODES = 5
REPORTS_FIX = "unzip mimic-cxr-reports.zip (MIMIC-CXR project) into --root, or pass --reports-root"


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warning" or "error"
    item: str
    detail: str
    fix: str = ""


def print_findings(console: Console, findings: list[Finding]) -> None:
    table = Table(title="doctor")
    for column in ("", "item", "detail", "fix"):
        table.add_column(column)
    marks = {"ok": "[green]ok[/]", "warning": "[yellow]warn[/]", "error": "[red]error[/]"}
    for f in findings:
        table.add_row(marks[f.level], f.item, f.detail, f.fix)
    console.print(table)


def _csv_finding(root: Path, names: tuple[str, ...], what: str, columns: tuple[str, ...],
                 expected_rows: int | None, fix: str) -> tuple[Finding, Path | None]:
    try:
        path = find_file(root, names, what)
        require_columns(path, columns)
    except CxrdataError as exc:
        return Finding("error", names[0], str(exc), fix), None
    rows = read_text_csv(path).height
    if expected_rows and rows != expected_rows:
        return Finding("warning", path.name, f"{rows:,} rows; the full release has {expected_rows:,}",
                       "a partial download? re-run the PhysioNet download to completion"), path
    return Finding("ok", path.name, f"{rows:,} rows, columns as expected"), path


def diagnose_mimic(root: Path, reports_root: Path | None = None) -> list[Finding]:
    """Check a MIMIC-CXR-JPG (+ reports) download."""
    reports_root = reports_root or root
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", "pass the folder that holds files/ and the CSVs")]
    get = "download it from the MIMIC-CXR-JPG project on PhysioNet into --root"
    findings: list[Finding] = []
    meta_finding, meta_path = _csv_finding(root, mimic.METADATA, "metadata", mimic.METADATA_COLUMNS, MIMIC_IMAGES, get)
    findings.append(meta_finding)
    findings.append(_csv_finding(root, mimic.SPLIT, "split", mimic.SPLIT_COLUMNS, MIMIC_IMAGES, get)[0])
    findings.append(_csv_finding(root, mimic.CHEXPERT, "chexpert", ("subject_id", "study_id",
                                                                    *mimic.chexpert_labels()), None, get)[0])
    for optional in ("mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.1.0-test-set-labeled.csv", "IMAGE_FILENAMES"):
        present = (root / optional).is_file()
        detail = "present" if present else "missing (optional)"
        findings.append(Finding("ok" if present else "warning", optional, detail, "" if present else get))
    if meta_path is None:
        return findings
    frame = read_text_csv(meta_path)
    valid = frame["subject_id"].str.contains(r"^\d+$") & frame["study_id"].str.contains(r"^\d+$")
    if bad := int((~valid.fill_null(False)).sum()):
        findings.append(Finding("error", meta_path.name, f"{bad} rows with a non-numeric subject_id or study_id",
                                "the file is corrupt: re-download it"))
    frame = frame.filter(valid.fill_null(False))
    folders = [mimic.study_folder(int(s), int(t)) for s, t in zip(frame["subject_id"], frame["study_id"], strict=True)]
    images = [root / folder / f"{d}.jpg" for folder, d in zip(folders, frame["dicom_id"], strict=True)]
    missing_images = [p for p in images if not p.is_file()]
    findings.append(Finding(
        "error" if missing_images else "ok", "files/ images",
        f"{len(images) - len(missing_images):,} of {len(images):,} metadata images present"
        + (f"; first missing: {missing_images[0].relative_to(root)}" if missing_images else ""),
        get if missing_images else ""))
    studies = sorted(set(folders))
    missing_reports = [s for s in studies if not (reports_root / f"{s}.txt").is_file()]
    findings.append(Finding(
        "error" if missing_reports else "ok", "reports",
        f"{len(studies) - len(missing_reports):,} of {len(studies):,} study reports present"
        + (f"; first missing: {missing_reports[0]}.txt" if missing_reports else ""),
        REPORTS_FIX if missing_reports else ""))
    for path in [p for p in images if p.is_file()][:SAMPLE_DECODES]:
        try:
            decode_jpeg(path.read_bytes(), max_side=64)
            findings.append(Finding("ok", str(path.relative_to(root)), "decodes"))
        except Rejected as exc:
            findings.append(Finding("error", str(path.relative_to(root)), f"{exc.reason}: {exc.detail}",
                                    "re-download this file (compare with SHA256SUMS.txt)"))
    return findings
