"""Doctor for NIH ChestX-ray14: the Data_Entry table (which one, columns, rows, what the build will reject or
note), BBox_List_2017.csv, the two split lists (counts, overlap, coverage), the PNG folders (layout, counts,
every image present) and a decode sample with the colour types it found."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from cxrdata.errors import Rejected
from cxrdata.imaging.png8 import decode_png8, png_header
from cxrdata.sources.chestxray14 import (
    BBOX_FILE,
    BOX_COLUMNS,
    DATA_ENTRY_FILES,
    ENTRY_ALIASES,
    ENTRY_COLUMNS,
    LIST_FILES,
    find_images,
    image_folders,
    read_list,
)
from cxrdata.sources.chestxray14_rows import AGE_LIMIT, BOX_CLASSES, LABELS, UNNAMED, age_years
from cxrdata.sources.doctor.findings import (
    SAMPLE_DECODES,
    Finding,
    count_finding,
    decode_findings,
    evenly_spaced,
    first_missing,
    official,
    read_csv_checked,
)

GET = ("download NIH ChestX-ray14 into --root (nihcc.app.box.com/v/ChestXray-NIHCC, or Kaggle's "
       "nih-chest-xrays/data)")
RESTORE = "restore {name} from the NIH download; its header must name: {columns}"
REDOWNLOAD = "re-download {path} (its archive images_NNN.tar.gz or zip); the build rejects it as {reason}"


def _unnamed_filled(frame: pl.DataFrame) -> int:
    """Rows with a cell in an unnamed column (past the header's trailing commas)."""
    unnamed = [c for c in frame.columns if UNNAMED.match(c)]
    if not unnamed:
        return 0
    return frame.select(pl.any_horizontal([pl.col(c).is_not_null() & (pl.col(c) != "") for c in unnamed])).sum().item()


def _data_entry(root: Path, chosen: Path | None) -> tuple[list[Finding], list[str]]:
    """The table the build reads: its checks, and the Image Index of every row."""
    present = [root / n for n in DATA_ENTRY_FILES if (root / n).is_file()]
    path = chosen or (present[0] if present else root / DATA_ENTRY_FILES[0])
    findings = []
    if chosen is None and len(present) > 1:
        findings.append(Finding("warning", "Data_Entry", f"both {' and '.join(p.name for p in present)}: the build "
                                f"reads {path.name} (NIH's corrected ages, follow-up numbers and labels)",
                                "nothing to do, or choose with --data-entry"))
    columns = list(ENTRY_COLUMNS)
    problem, frame = read_csv_checked(path, columns, GET, RESTORE.format(name=path.name, columns=", ".join(columns)),
                                      rename=ENTRY_ALIASES)
    if problem or frame is None:
        return [*findings, problem or Finding("error", path.name, "unreadable", GET)], []
    frame = frame.rename(ENTRY_ALIASES, strict=False)
    findings.append(count_finding(path.name, frame.height, official()["chestx-ray14"]["images"], "rows, columns "
                                  "as expected"))
    names = [n or "" for n in frame["Image Index"].to_list()]
    if extra := _unnamed_filled(frame):
        findings.append(Finding("error", f"{path.name}: extra_cells", f"{extra} row(s) with cells past the named "
                                "columns (the build rejects them)", f"restore {path.name}"))
    bad = [v for v in frame["Finding Labels"].to_list()
           if any(part.strip() not in LABELS for part in str(v or "").split("|"))]
    if bad:
        findings.append(Finding("error", f"{path.name}: label_unknown", f"{len(bad)} row(s) with a label that is none "
                                f"of the 15, first: {bad[0]!r} (the build rejects them)", f"restore {path.name}"))
    implausible = [a for a in frame["Patient Age"].to_list() if _over_limit(a)]
    if implausible:
        findings.append(Finding("warning", f"{path.name}: age_implausible", f"{len(implausible)} age(s) over "
                                f"{AGE_LIMIT}, e.g. {implausible[0]} (stored as null, noted)",
                                "Data_Entry_2017_v2020.csv from NIH corrects them: use it"))
    if repeated := sum(n - 1 for n in Counter(names).values() if n > 1):
        findings.append(Finding("warning", f"{path.name}: repeated Image Index", f"{repeated} extra row(s) (verbatim "
                                "repeats are kept once; differing ones reject the image)", f"restore {path.name}"))
    return findings, names


def _over_limit(value: object) -> bool:
    try:
        return age_years(value, {}) is None and bool(str(value or "").strip())
    except Rejected:
        return False


def _boxes(root: Path, names: set[str]) -> list[Finding]:
    columns = list(BOX_COLUMNS)
    problem, frame = read_csv_checked(root / BBOX_FILE, columns, GET,
                                      RESTORE.format(name=BBOX_FILE, columns=", ".join(columns)))
    if problem or frame is None:
        return [problem or Finding("error", BBOX_FILE, "unreadable", GET)]
    findings = [count_finding(BBOX_FILE, frame.height, official()["chestx-ray14"]["boxes"], "box rows")]
    labels = Counter(str(v or "") for v in frame["Finding Label"].to_list())
    respelled = {a: labels[a] for a in BOX_CLASSES.aliases if labels[a]}
    if respelled:
        findings.append(Finding("ok", f"{BBOX_FILE}: labels", ", ".join(
            f"{n} {a!r} stored as {BOX_CLASSES.canonical(a)!r}" for a, n in respelled.items())))
    unknown = [lab for lab in labels if BOX_CLASSES.canonical(lab) not in BOX_CLASSES.local_labels]
    if unknown:
        findings.append(Finding("error", f"{BBOX_FILE}: box_label_unknown", f"labels that are no box class: "
                                f"{', '.join(map(repr, unknown))} (their boxes become rejected regions)",
                                f"restore {BBOX_FILE}"))
    orphans = sum(1 for n in frame["Image Index"].to_list() if n not in names)
    if orphans:
        findings.append(Finding("warning", f"{BBOX_FILE}: box_row_without_data_entry", f"{orphans} box row(s) for "
                                "images no Data_Entry row lists (counted as excluded)", f"restore {BBOX_FILE}"))
    if extra := _unnamed_filled(frame):
        findings.append(Finding("error", f"{BBOX_FILE}: box_row_malformed", f"{extra} row(s) with cells after h",
                                f"restore {BBOX_FILE}"))
    return findings


def _lists(root: Path, names: list[str]) -> list[Finding]:
    findings, listed = [], {}
    for split, rel in LIST_FILES.items():
        if not (root / rel).is_file():
            findings.append(Finding("error", rel, f"missing ({root / rel})", GET))
            continue
        listed[split] = read_list(root / rel)
        findings.append(count_finding(rel, len(listed[split]), official()["chestx-ray14"]["lists"][split],
                                      "Image Index lines"))
    if len(listed) < len(LIST_FILES):
        return findings
    both = set(listed["train"]) & set(listed["test"])
    if both:
        findings.append(Finding("error", "split lists: split_conflict", f"{len(both)} image(s) in both lists, first: "
                                f"{sorted(both)[0]} (the build rejects them)", "restore both lists"))
    known = set(listed["train"]) | set(listed["test"])
    findings.append(first_missing("split lists: coverage", sorted(set(names)), known, "Data_Entry images",
                                  "restore both lists; unlisted images are rejected as split_missing"))
    if strays := sorted(known - set(names)):
        findings.append(Finding("warning", "split lists: list_entry_without_data_entry", f"{len(strays)} listed "
                                f"image(s) without a Data_Entry row, first: {strays[0]} (counted as excluded)",
                                "restore the Data_Entry table"))
    return findings


def _images(root: Path, names: list[str], sample: int) -> list[Finding]:
    folders = image_folders(root)
    if not folders:
        return [Finding("error", "images", f"no images/ or images_NNN/images/ folder in {root}", GET)]
    files = find_images(root)
    where = ", ".join(f"{f.relative_to(root).as_posix()}/" for f in folders)
    findings = [count_finding(where, len(files), official()["chestx-ray14"]["images"], "PNGs")]
    if twice := sorted(n for n, paths in files.items() if len(paths) > 1):
        findings.append(Finding("error", "images: image_duplicate", f"{len(twice)} PNG name(s) in two folders, first: "
                                f"{', '.join(files[twice[0]])} (the build rejects them)", "keep one copy of each"))
    findings.append(first_missing(f"{where}: present", sorted(set(names)), set(files), "Data_Entry images",
                                  "unpack the missing images_NNN archives; missing PNGs are rejected as image_missing"))
    paths = sorted(root / p[0] for p in files.values())
    findings += decode_findings(paths, root, lambda p: decode_png8(p.read_bytes(), max_side=64), REDOWNLOAD, sample)
    colours = Counter(png_header(p.open("rb").read(33))[3] for p in evenly_spaced(paths, sample) if _is_png(p))
    if set(colours) - {"gray"}:
        findings.append(Finding("ok", "sample colour types", ", ".join(f"{n} {c}" for c, n in sorted(colours.items()))
                                + " (the build makes every PNG one gray channel and notes the others)"))
    return findings


def _is_png(path: Path) -> bool:
    try:
        png_header(path.open("rb").read(33))
    except (OSError, Rejected):
        return False
    return True


def diagnose_chestxray14(root: Path, data_entry: Path | None = None, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a ChestX-ray14 download (the folder holding Data_Entry_2017*.csv, BBox_List_2017.csv, the lists)."""
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", GET)]
    findings, names = _data_entry(root, data_entry)
    return [*findings, *_boxes(root, set(names)), *_lists(root, names), *_images(root, names, decode)]
