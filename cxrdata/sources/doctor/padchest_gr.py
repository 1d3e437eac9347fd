"""Doctor for PadChest-GR: the grounded-reports JSON (ids or pairing by order, malformed, duplicated and unsafe
records), master_table.csv (23 columns), the 16-bit PNGs (counts, every report's image present) and a decode
sample."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.imaging.png16 import decode_png16
from cxrdata.sources.doctor.findings import (
    SAMPLE_DECODES,
    Finding,
    count_finding,
    decode_findings,
    first_missing,
    official,
    read_csv_checked,
)
from cxrdata.sources.input_checks import unsafe_name
from cxrdata.sources.padchest_gr import IMAGE_DIRS, MASTER_TABLE, REPORTS_GLOB, prior_dir
from cxrdata.sources.padchest_gr_entries import entry_problem
from cxrdata.sources.padchest_gr_master import pair_by_order, read_studies

GET = "request PadChest-GR from BIMCV (bimcv.cipf.es/bimcv-projects/padchest-gr/) and unpack it into --root"
RESTORE = "restore {name} from the BIMCV download; its columns must be: {columns}"
REDOWNLOAD = ("restore the original 16-bit {path} from the BIMCV download (PadChest-GR PNGs are 16-bit grayscale; "
              "a re-saved or truncated copy fails as {reason})")


def _load(root: Path) -> tuple[list[Finding], Path | None, list[dict[str, Any]]]:
    found = sorted(root.glob(REPORTS_GLOB))
    if not found:
        return [Finding("error", REPORTS_GLOB, f"no grounded reports JSON in {root}", GET)], None, []
    path = found[-1]
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        found = Finding("error", path.name, f"not valid JSON: {exc}", f"re-download {path.name} (truncated?)")
        return [found], path, []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        return [Finding("error", path.name, "not a non-empty JSON list of study objects", f"re-download {path.name}")
                ], path, []
    return [count_finding(path.name, len(entries), official()["padchest-gr"]["images"], "studies")], path, entries


def _records(path: Path, entries: list[dict[str, Any]]) -> list[Finding]:
    """Malformed, unsafe and duplicated records, as the build will reject or note them."""
    findings = []
    problems = [(k, p) for k, e in enumerate(entries) if (p := entry_problem(e))]
    for reason, first in {p[0]: (k, p[1]) for k, p in reversed(problems)}.items():
        count = sum(p[0] == reason for _, p in problems)
        findings.append(Finding("error", f"{path.name}: {reason}", f"{count} record(s) rejected, first: record "
                                f"{first[0]}, {first[1]}", f"restore {path.name} from the BIMCV download"))
    unsafe = [str(e[k]) for e in entries for k in ("StudyID", "ImageID", "PreviousImageID")
              if isinstance(e.get(k), str) and e[k] and unsafe_name(e[k])]
    if unsafe:
        findings.append(Finding("error", f"{path.name}: unsafe_id", f"{len(unsafe)} id(s) that name a path outside "
                                f"their folder, first: {unsafe[0]!r} (the build rejects them)", f"restore {path.name}"))
    copies = Counter(str(e["ImageID"]) for e in entries if isinstance(e.get("ImageID"), str))
    repeated = [i for i, n in copies.items() if n > 1]
    differing = [i for i in repeated if len({json.dumps(e, sort_keys=True) for e in entries
                                             if e.get("ImageID") == i}) > 1]
    if differing:
        findings.append(Finding("error", f"{path.name}: conflicting_entries", f"{len(differing)} ImageID(s) with "
                                f"differing records, first: {differing[0]} (the build rejects every copy)",
                                f"restore {path.name}"))
    if len(repeated) > len(differing):
        findings.append(Finding("warning", f"{path.name}: duplicate_entry", f"{len(repeated) - len(differing)} "
                                "record(s) repeated verbatim (the build keeps one and counts a note)", "nothing to do"))
    return findings


def _pairing(root: Path, path: Path, entries: list[dict[str, Any]]) -> tuple[list[Finding], list[str], set[str]]:
    """How records meet the master table; the ImageIDs to look for and the StudyIDs the records name."""
    with_ids = any("StudyID" in e or "ImageID" in e for e in entries)
    if with_ids:
        missing = sum(1 for e in entries if not e.get("StudyID") or not e.get("ImageID"))
        found = [Finding("error", f"{path.name}: id_missing", f"{missing} records lack StudyID or ImageID "
                         "(the build rejects them)", f"re-download {path.name}")] if missing else []
        images = sorted({str(e["ImageID"]) for e in entries if e.get("ImageID")} - {""})
        return found, images, {str(e["StudyID"]) for e in entries if e.get("StudyID")}
    try:
        studies = read_studies(root / MASTER_TABLE)
        checks = pair_by_order(entries, [entry_problem(e) for e in entries], studies, path.name)
    except CxrdataError as exc:
        return [Finding("error", f"{path.name}: pairing", str(exc),
                        f"use the {MASTER_TABLE} that came with {path.name}")], [], set()
    failed = [k for k, c in enumerate(checks) if c]
    detail = (f"no StudyID/ImageID: paired with {MASTER_TABLE}'s studies by order, "
              f"{len(entries) - len(failed)} of {len(entries)} pairs verify")
    found = [Finding("error" if failed else "ok", f"{path.name}: pairing",
                     detail + (f"; first failing: record {failed[0]} ({checks[failed[0]]})" if failed else ""),
                     "the build rejects those records as pairing_mismatch" if failed else "")]
    return found, sorted({s.image_id for s in studies if s.image_id}), {s.study_id for s in studies}


def _master(root: Path, study_ids: set[str]) -> list[Finding]:
    path = root / MASTER_TABLE
    missing_fix = (f"unzip {MASTER_TABLE}.zip in --root" if (root / f"{MASTER_TABLE}.zip").is_file()
                   else GET)
    columns = official()["padchest-gr"]["master_columns"]
    problem, frame = read_csv_checked(path, columns, missing_fix,
                                      RESTORE.format(name=MASTER_TABLE, columns=",".join(columns)))
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
    findings.append(first_missing(f"{folder.relative_to(root)}/ report images",
                                  [i for i in image_ids if not unsafe_name(i)], {p.name for p in files},
                                  "report images", f"restore the missing PNGs into {folder.relative_to(root)}/ "
                                  "from the BIMCV download"))
    prior = prior_dir(root)
    findings.append(count_finding(f"{prior.relative_to(root)}/", len(list(prior.glob("*.png"))),
                                  counts["prior_images"], "PNGs (optional: prior studies)") if prior.is_dir()
                    else Finding("warning", f"{prior.relative_to(root)}/",
                                 "missing (optional: prior studies are not built)",
                                 "nothing to do, or unpack it from the BIMCV download"))
    return findings + decode_findings(files, root, lambda p: decode_png16(p, max_side=64), REDOWNLOAD, sample)


def diagnose_padchest_gr(root: Path, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a PadChest-GR download (grounded_reports_*.json, master_table.csv, PadChest_GR/)."""
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", GET)]
    findings, path, entries = _load(root)
    image_ids: list[str] = []
    study_ids: set[str] = set()
    if path is not None and entries:
        findings += _records(path, entries)
        paired, image_ids, study_ids = _pairing(root, path, entries)
        findings += paired
    return findings + _master(root, study_ids) + _images(root, image_ids, decode)
