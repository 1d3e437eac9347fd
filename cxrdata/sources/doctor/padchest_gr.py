"""Doctor for PadChest-GR: the grounded-reports JSON, master_table.csv (23 columns), the 16-bit PNGs
(counts, every report's image present) and a decode sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cxrdata.imaging.png16 import decode_png16
from cxrdata.sample.padchest_gr import MASTER_COLUMNS, PRIOR_DIR
from cxrdata.sources.doctor.findings import (
    SAMPLE_DECODES,
    Finding,
    count_finding,
    decode_findings,
    first_missing,
    official,
    read_csv_checked,
)
from cxrdata.sources.padchest_gr import IMAGE_DIRS, MASTER_TABLE, REPORTS_GLOB

GET = "request PadChest-GR from BIMCV (bimcv.cipf.es/bimcv-projects/padchest-gr/) and unpack it into --root"
RESTORE = "restore {name} from the BIMCV download; its columns must be: {columns}"
REDOWNLOAD = ("restore the original 16-bit {path} from the BIMCV download (PadChest-GR PNGs are 16-bit grayscale; "
              "a re-saved or truncated copy fails as {reason})")
ENTRY_KEYS = ("StudyID", "ImageID", "findings")


def _reports(root: Path) -> tuple[list[Finding], list[dict[str, Any]]]:
    found = sorted(root.glob(REPORTS_GLOB))
    if not found:
        return [Finding("error", REPORTS_GLOB, f"no grounded reports JSON in {root}", GET)], []
    path = found[-1]
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Finding("error", path.name, f"not valid JSON: {exc}", f"re-download {path.name} (truncated?)")], []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [Finding("error", path.name, "not a JSON list of study objects", f"re-download {path.name}")], []
    findings = [count_finding(path.name, len(entries), official()["padchest-gr"]["images"], "studies")]
    incomplete = [i for i, e in enumerate(entries) if any(k not in e for k in ENTRY_KEYS)]
    if incomplete:
        findings.append(Finding("error", path.name, f"{len(incomplete)} entries lack {' / '.join(ENTRY_KEYS)}, "
                                f"first at index {incomplete[0]}",
                                f"re-download {path.name}; the build rejects these entries as id_missing"))
    return findings, entries


def _master(root: Path, study_ids: set[str]) -> list[Finding]:
    path = root / MASTER_TABLE
    missing_fix = (f"unzip {MASTER_TABLE}.zip in --root" if (root / f"{MASTER_TABLE}.zip").is_file()
                   else GET)
    problem, frame = read_csv_checked(path, MASTER_COLUMNS, missing_fix,
                                      RESTORE.format(name=MASTER_TABLE, columns=",".join(MASTER_COLUMNS)))
    if problem or frame is None:
        return [problem or Finding("error", MASTER_TABLE, "unreadable", GET)]
    findings = [count_finding(MASTER_TABLE, frame.height, official()["padchest-gr"]["master_rows"],
                              "rows, columns as expected")]
    listed = set(frame["StudyID"].drop_nulls())
    findings.append(first_missing(f"{MASTER_TABLE} studies", sorted(study_ids), listed, "report studies",
                                  f"restore {MASTER_TABLE} from the BIMCV download; studies missing from it are "
                                  "rejected as split_missing"))
    return findings


def _images(root: Path, image_ids: list[str], sample: int) -> list[Finding]:
    folder = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if folder is None:
        return [Finding("error", IMAGE_DIRS[0], f"no image folder ({', '.join(IMAGE_DIRS)}) in {root}", GET)]
    files = sorted(folder.glob("*.png"))
    counts = official()["padchest-gr"]
    findings = [count_finding(f"{folder.relative_to(root)}/", len(files), counts["images"], "PNGs")]
    findings.append(first_missing(f"{folder.relative_to(root)}/ report images", image_ids, {p.name for p in files},
                                  "report images", f"restore the missing PNGs into {folder.relative_to(root)}/ "
                                  "from the BIMCV download"))
    prior = root / PRIOR_DIR
    findings.append(count_finding(f"{PRIOR_DIR}/", len(list(prior.glob("*.png"))), counts["prior_images"],
                                  "PNGs (optional: prior studies)") if prior.is_dir()
                    else Finding("warning", f"{PRIOR_DIR}/", "missing (optional: prior studies are not built)",
                                 "nothing to do, or unpack it from the BIMCV download"))
    return findings + decode_findings(files, root, lambda p: decode_png16(p, max_side=64), REDOWNLOAD, sample)


def diagnose_padchest_gr(root: Path, sample: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a PadChest-GR download (grounded_reports_*.json, master_table.csv, PadChest_GR/)."""
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", GET)]
    findings, entries = _reports(root)
    study_ids = {str(e["StudyID"]) for e in entries if e.get("StudyID")}
    image_ids = sorted({str(e["ImageID"]) for e in entries if e.get("ImageID")})
    return findings + _master(root, study_ids) + _images(root, image_ids, sample)
