"""Doctor for MS-CXR: which CSV is read (the newest version found), its version (from its header), categories,
splits, boxes, repeated and conflicting rows, the COCO JSON, and the MIMIC-CXR-JPG images it points to."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from cxrdata.errors import CxrdataError
from cxrdata.imaging.raster import decode_jpeg
from cxrdata.io.csvfiles import find_file, header, read_text_csv
from cxrdata.sources import ms_cxr
from cxrdata.sources.doctor.findings import (
    SAMPLE_DECODES,
    Finding,
    count_finding,
    decode_findings,
    first_missing,
    official,
)
from cxrdata.sources.mimic import SPLIT
from cxrdata.vocabulary import pathologies

GET = ("download MS-CXR from PhysioNet (physionet.org/content/ms-cxr/1.1.0/) and pass the project folder "
       "(holding 1.1.0/) or the folder holding MS_CXR_Local_Alignment_v1.1.0.csv as --root")
RESTORE = "restore the original file from the download (compare with SHA256SUMS.txt); its header must be: {header}"
IMAGES = ("MS-CXR ships no images: download MIMIC-CXR-JPG from PhysioNet and pass its root (holding files/) as "
          "--mimic-root")
REDOWNLOAD = "re-download MIMIC-CXR-JPG's {path} from PhysioNet (compare with SHA256SUMS.txt)"
SPLITS = ("train", "val", "test")
SPLIT_FIX = "MS-CXR v1.0.0 takes its split from MIMIC-CXR-JPG: put mimic-cxr-2.0.0-split.csv.gz in --mimic-root"
JSON_KEYS = ("images", "annotations", "categories")


def _version(csv: Path) -> tuple[Finding, str | None]:
    try:
        version = ms_cxr.detect_version(header(csv), csv)
    except CxrdataError as exc:
        return Finding("error", csv.name, str(exc), RESTORE.format(header=",".join(ms_cxr.V1_1_COLUMNS))), None
    return Finding("ok", csv.name, f"MS-CXR v{version} (read from the header)"), version


def _content(frame: pl.DataFrame, csv: Path, version: str) -> list[Finding]:
    findings = []
    counts = official()["ms-cxr"].get(version, {})
    findings.append(count_finding(f"{csv.name} rows", frame.height, counts.get("rows"), "box rows"))
    findings.append(count_finding(f"{csv.name} images", frame["dicom_id"].n_unique(), counts.get("images"), "images"))
    unknown = sorted(set(frame["category_name"].drop_nulls()) - set(pathologies()))
    findings.append(Finding("error", "category_name", f"unknown categories: {', '.join(unknown)}",
                            f"MS-CXR has the 8 categories {', '.join(pathologies())}; "
                            + RESTORE.format(header=",".join(frame.columns)))
                    if unknown else Finding("ok", "category_name", f"{frame['category_name'].n_unique()} categories"))
    if version == "1.1.0":
        bad = sorted(set(frame["split"].fill_null("(empty)")) - set(SPLITS))
        fix = f"v1.1.0 splits are {', '.join(SPLITS)}; " + RESTORE.format(header=",".join(frame.columns))
        findings.append(Finding("error", "split", f"unexpected split values: {', '.join(bad)}", fix)
                        if bad else Finding("ok", "split", "train / val / test"))
    numbers = frame.select(*(pl.col(c).cast(pl.Float64, strict=False) for c in ("x", "y", "w", "h", "image_width",
                                                                                 "image_height")))
    not_numbers = numbers.select(pl.any_horizontal(pl.all().is_null()).sum()).item()
    outside = numbers.filter((pl.col("x") < 0) | (pl.col("y") < 0) | (pl.col("w") <= 0) | (pl.col("h") <= 0)
                             | (pl.col("x") + pl.col("w") > pl.col("image_width"))
                             | (pl.col("y") + pl.col("h") > pl.col("image_height"))).height
    if not_numbers:
        findings.append(Finding("error", "boxes", f"{not_numbers} rows with a non-numeric box or image size",
                                RESTORE.format(header=",".join(frame.columns))))
    findings.append(Finding("warning", "boxes", f"{outside} boxes reach outside their image or have no area",
                            "nothing to do: the build clips them (note box_clipped) or rejects the region")
                    if outside else Finding("ok", "boxes", "every box lies inside its image"))
    return findings


def _rows(frame: pl.DataFrame, csv: Path) -> list[Finding]:
    """Repeated, conflicting and unsafe rows, as the build will note or reject them."""
    repeats = frame.height - frame.unique().height
    findings = [Finding("warning", f"{csv.name} duplicates", f"{repeats} row(s) repeated verbatim (the build keeps "
                        "one box and counts a note duplicate_row)", "nothing to do, or restore the original file")
                if repeats else Finding("ok", f"{csv.name} duplicates", "no row is repeated")]
    conflicts = ms_cxr.image_conflicts(frame)
    if conflicts:
        first = next(iter(conflicts.values()))
        findings.append(Finding("error", f"{csv.name} conflicts", f"{len(conflicts)} image(s) whose rows disagree, "
                                f"first: {first} (the build rejects their records as conflicting_rows)",
                                RESTORE.format(header=",".join(frame.columns))))
    bad_ids = frame.filter(~frame["dicom_id"].fill_null("").str.contains(ms_cxr.DICOM_ID.pattern))
    if bad_ids.height:
        findings.append(Finding("error", f"{csv.name} dicom_id", f"{bad_ids.height} row(s) whose dicom_id is not 5 "
                                f"groups of 8 hex digits, first: {bad_ids['dicom_id'][0]!r} (rejected)",
                                RESTORE.format(header=",".join(frame.columns))))
    return findings


def _json(csv: Path) -> Finding:
    path = csv.with_suffix(".json")
    if not path.is_file():
        return Finding("warning", path.name, "missing (optional: the build reads the CSV)",
                       "nothing to do, or restore it from the MS-CXR download")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Finding("warning", path.name, f"not valid JSON: {exc}", "re-download it (the build reads the CSV)")
    missing = [k for k in JSON_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        return Finding("warning", path.name, f"missing COCO key(s) {', '.join(missing)}", "re-download it")
    return Finding("ok", path.name, f"{len(data['images'])} images, {len(data['annotations'])} annotations")


def _images(frame: pl.DataFrame, mimic_root: Path | None, version: str, sample: int) -> list[Finding]:
    if mimic_root is None:
        return [Finding("warning", "MIMIC-CXR-JPG images", "not checked (no --mimic-root)", IMAGES)]
    if not (mimic_root / "files").is_dir():
        return [Finding("error", "MIMIC-CXR-JPG images", f"{mimic_root / 'files'} does not exist", IMAGES)]
    findings = []
    if version == "1.0.0":
        try:
            find_file(mimic_root, SPLIT, "MIMIC-CXR-JPG split file")
            findings.append(Finding("ok", "MIMIC-CXR-JPG split", "present (v1.0.0 has no split column)"))
        except CxrdataError as exc:
            findings.append(Finding("error", "MIMIC-CXR-JPG split", str(exc), SPLIT_FIX))
    paths = sorted(set(frame["path"].drop_nulls()))
    present = {p for p in paths if (mimic_root / p).is_file()}
    findings.append(first_missing("referenced images", paths, present, "referenced images", IMAGES))
    findings += decode_findings([mimic_root / p for p in sorted(present)], mimic_root,
                                lambda p: decode_jpeg(p.read_bytes(), max_side=64), REDOWNLOAD, sample)
    return findings


def diagnose_ms_cxr(root: Path, mimic_root: Path | None = None, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check an MS-CXR download (and, with ``mimic_root``, the images it refers to)."""
    if not root.exists():
        return [Finding("error", str(root), "does not exist", GET)]
    try:
        choice = ms_cxr.choose_csv(root)
    except CxrdataError as exc:
        return [Finding("error", ms_cxr.CSV_PATTERN, str(exc), GET)]
    csv = choice.csv
    found, version = _version(csv)
    findings = [Finding("ok", "MS-CXR version", choice.summary), found]
    if version is None:
        return findings
    frame = read_text_csv(csv)
    findings += _content(frame, csv, version) + _rows(frame, csv)
    findings.append(_json(csv))
    return findings + _images(frame, mimic_root, version, decode)
