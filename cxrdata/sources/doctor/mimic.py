"""Doctor for MIMIC-CXR-JPG (+ the MIMIC-CXR reports): CSVs, images, reports, a decode sample."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cxrdata.errors import CxrdataError
from cxrdata.imaging.raster import decode_jpeg
from cxrdata.io.csvfiles import find_file, read_text_csv, require_columns
from cxrdata.sources import mimic
from cxrdata.sources.doctor.findings import SAMPLE_DECODES, Finding, decode_findings, official
from cxrdata.sources.mimic_tables import distinct

REPORTS_FIX = "unzip mimic-cxr-reports.zip (MIMIC-CXR project) into --root, or pass --reports-root"
GET = "download it from the MIMIC-CXR-JPG project on PhysioNet into --root"
REDOWNLOAD = "re-download {path} from PhysioNet (compare with SHA256SUMS.txt)"
DUPLICATES_FIX = "nothing to do unless the copy was edited; compare with SHA256SUMS.txt"
REDOWNLOAD_TABLE = "re-download the file from PhysioNet (compare with SHA256SUMS.txt)"
OPTIONAL = ("mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.1.0-test-set-labeled.csv", "IMAGE_FILENAMES")


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


def table_row_findings(root: Path) -> list[Finding]:
    """Duplicated, conflicting and invalid rows of the three tables, as the build will treat them."""
    tables = {"metadata": (mimic.METADATA, ["dicom_id"]), "split": (mimic.SPLIT, ["dicom_id"]),
              "chexpert": (mimic.CHEXPERT, ["subject_id", "study_id"])}
    findings = []
    for table, (names, key) in tables.items():
        path = find_file(root, names, table)
        frame = read_text_csv(path)
        rows = distinct(frame, key, table)
        if rows.duplicates:
            detail = (f"{rows.duplicates:,} extra row(s) repeating another exactly; the build keeps one of each "
                      f"(counted as {table}_row_duplicate)")
            findings.append(Finding("warning", path.name, detail, DUPLICATES_FIX))
        if rows.conflicts:
            detail = (f"{len(rows.conflicts):,} key(s) with differing rows; the build rejects their images "
                      f"({table}_conflict); first: {next(iter(rows.conflicts.values()))}")
            findings.append(Finding("error", path.name, detail, REDOWNLOAD_TABLE))
        if table == "chexpert":
            cells = frame.select(mimic.chexpert_labels()).unpivot()
            number = pl.col("value").str.strip_chars().cast(pl.Float64, strict=False)  # as the build reads a cell
            bad = cells.filter(pl.col("value").is_not_null() & ~number.is_in([1.0, 0.0, -1.0]).fill_null(False))
            if bad.height:
                detail = (f"{bad.height:,} label cell(s) not 1.0, 0.0, -1.0 or empty (first: {bad['variable'][0]} = "
                          f"{bad['value'][0]!r}); the build rejects those studies' images (chexpert_invalid)")
                findings.append(Finding("error", path.name, detail, REDOWNLOAD_TABLE))
    return findings


def image_paths(root: Path, meta_path: Path) -> tuple[list[Finding], list[str], list[Path]]:
    """Findings about the metadata's ids, the study folders and the image path of every valid row."""
    findings = []
    frame = read_text_csv(meta_path)
    valid = (frame["subject_id"].str.contains(r"^\d+$") & frame["study_id"].str.contains(r"^\d+$")).fill_null(False)
    if bad := int((~valid).sum()):
        findings.append(Finding("error", meta_path.name, f"{bad} rows with a non-numeric subject_id or study_id",
                                "the file is corrupt: re-download it"))
    named = frame["dicom_id"].str.contains(f"^{mimic.DICOM_ID.pattern}$").fill_null(False)
    if bad := int((valid & ~named).sum()):  # never look outside the root for them
        detail = (f"{bad} rows whose dicom_id is not 5 groups of 8 hex digits (first: "
                  f"{frame.filter(valid & ~named)['dicom_id'][0]!r}); the build rejects them (bad_id)")
        findings.append(Finding("error", meta_path.name, detail, "the file is corrupt: re-download it"))
    frame = frame.filter(valid & named)
    folders = [mimic.study_folder(int(s), int(t)) for s, t in zip(frame["subject_id"], frame["study_id"], strict=True)]
    images = [root / folder / f"{d}.jpg" for folder, d in zip(folders, frame["dicom_id"], strict=True)]
    return findings, folders, images


def diagnose_mimic(root: Path, reports_root: Path | None = None, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a MIMIC-CXR-JPG (+ reports) download."""
    reports_root = reports_root or root
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", "pass the folder that holds files/ and the CSVs")]
    counts = official()["mimic-cxr-jpg"]
    findings: list[Finding] = []
    meta_finding, meta_path = _csv_finding(root, mimic.METADATA, "metadata", mimic.METADATA_COLUMNS,
                                           counts["images"], GET)
    findings.append(meta_finding)
    findings.append(_csv_finding(root, mimic.SPLIT, "split", mimic.SPLIT_COLUMNS, counts["images"], GET)[0])
    findings.append(_csv_finding(root, mimic.CHEXPERT, "chexpert", ("subject_id", "study_id",
                                                                    *mimic.chexpert_labels()), None, GET)[0])
    for optional in OPTIONAL:
        present = (root / optional).is_file()
        detail = "present" if present else "missing (optional)"
        findings.append(Finding("ok" if present else "warning", optional, detail, "" if present else GET))
    if meta_path is None:
        return findings
    findings += table_row_findings(root) if all(f.level != "error" for f in findings[:3]) else []
    id_findings, folders, images = image_paths(root, meta_path)
    findings += id_findings
    missing_images = [p for p in images if not p.is_file()]
    findings.append(Finding(
        "error" if missing_images else "ok", "files/ images",
        f"{len(images) - len(missing_images):,} of {len(images):,} metadata images present"
        + (f"; first missing: {missing_images[0].relative_to(root)}" if missing_images else ""),
        GET if missing_images else ""))
    studies = sorted(set(folders))
    missing_reports = [s for s in studies if not (reports_root / f"{s}.txt").is_file()]
    findings.append(Finding(
        "error" if missing_reports else "ok", "reports",
        f"{len(studies) - len(missing_reports):,} of {len(studies):,} study reports present"
        + (f"; first missing: {missing_reports[0]}.txt" if missing_reports else ""),
        REPORTS_FIX if missing_reports else ""))
    present = [p for p in images if p.is_file()]
    findings += decode_findings(present, root, lambda p: decode_jpeg(p.read_bytes(), max_side=64), REDOWNLOAD, decode)
    return findings
