"""Doctor for VinDr-CXR 1.0.0: the four annotation CSVs (columns, label names, row counts), the DICOM
folders (counts, every annotated image present) and a decode sample."""

from __future__ import annotations

from pathlib import Path

from cxrdata.imaging.dicom import decode_dicom
from cxrdata.sources.doctor.findings import (
    SAMPLE_DECODES,
    Finding,
    count_finding,
    decode_findings,
    first_missing,
    official,
    read_csv_checked,
)
from cxrdata.sources.vindr import ANNOTATIONS, BOX_COLUMNS, IMAGE_LABELS, RENAME

SPLITS = ("train", "test")
GET = "download VinDr-CXR 1.0.0 from PhysioNet (physionet.org/content/vindr-cxr/1.0.0/) into --root"
RESTORE = "restore {name} from the PhysioNet download (compare with SHA256SUMS.txt); its columns must be: {columns}"
REDOWNLOAD = ("re-download {path} from PhysioNet; if the fresh copy fails too it is a known upstream defect "
              "(vinbigdata-medical/vindr-cxr#3) and the build rejects it as {reason}")
SUFFIX = ".dicom"


def _csvs(root: Path, split: str) -> tuple[list[Finding], set[str]]:
    """The split's box and label CSVs: columns, label names, row counts; and every image id they name."""
    findings, ids = [], set()
    reader = ("rad_id",) if split == "train" else ()
    box_columns = (BOX_COLUMNS[0], *reader, *BOX_COLUMNS[1:])
    label_columns = ("image_id", *reader, *official()["vindr-cxr"]["image_label_columns"])
    for rel, columns in ((ANNOTATIONS[split], box_columns), (IMAGE_LABELS[split], label_columns)):
        path = root / rel
        problem, frame = read_csv_checked(path, columns, GET,
                                          RESTORE.format(name=rel, columns=",".join(columns)), rename=RENAME)
        if problem or frame is None:
            findings.append(problem or Finding("error", rel, "unreadable", GET))
            continue
        ids |= set(frame["image_id"].drop_nulls())
        expected = official()["vindr-cxr"]["image_labels"][split] if rel == IMAGE_LABELS[split] else None
        findings.append(count_finding(rel, frame.height, expected, "rows, columns as expected"))
    return findings, ids


def _images(root: Path, split: str, ids: set[str], sample: int) -> list[Finding]:
    folder = root / split
    if not folder.is_dir():
        return [Finding("error", f"{split}/", f"{folder} does not exist", GET)]
    files = sorted(folder.glob(f"*{SUFFIX}"))
    findings = [count_finding(f"{split}/", len(files), official()["vindr-cxr"]["images"][split], "DICOM files")]
    if other := sorted(p.name for p in folder.glob("*.dcm")):
        findings.append(Finding("error", f"{split}/", f"{len(other)} files end in .dcm, e.g. {other[0]}",
                                f"VinDr-CXR names its files <image_id>{SUFFIX}: rename them (for f in {split}/*.dcm; "
                                f'do mv "$f" "${{f%.dcm}}{SUFFIX}"; done)'))
    findings.append(first_missing(f"{split}/ annotated images", sorted(f"{i}{SUFFIX}" for i in ids),
                                  {p.name for p in files}, "annotated images", GET))
    findings += decode_findings(files, root, lambda p: decode_dicom(p, max_side=64), REDOWNLOAD, sample)
    return findings


def diagnose_vindr(root: Path, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a VinDr-CXR download (the folder holding annotations/, train/ and test/)."""
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", GET)]
    findings: list[Finding] = []
    for split in SPLITS:
        csv_findings, ids = _csvs(root, split)
        findings += csv_findings + _images(root, split, ids, decode)
    return findings
