"""Doctor for Chest ImaGenome 1.0.0: gold CSVs, silver split files, scene graphs (count, a parse sample),
and the MIMIC-CXR-JPG images the splits point to."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from cxrdata.errors import CxrdataError
from cxrdata.imaging.raster import decode_jpeg
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
from cxrdata.sources.imagenome_attributes import (
    GOLD_ATTRIBUTES,
    REQUIRED_COLUMNS,
    check_attributes_file,
    read_attribute_rows,
)
from cxrdata.sources.imagenome_gold import SCALING_COLUMNS
from cxrdata.sources.imagenome_layout import (
    AVOID_FILE,
    GOLD_BOXES,
    GOLD_SCALING,
    SCENE_GRAPH_DIR,
    SCENE_GRAPH_SUFFIX,
    SCENE_GRAPH_ZIP,
    SPLIT_COLUMNS,
    SPLIT_DIR,
    SPLIT_FILES,
    dataset_dir,
)

GET = ("download Chest ImaGenome 1.0.0 from PhysioNet (physionet.org/content/chest-imagenome/1.0.0/), unzip "
       "chest-imagenome-dataset-1.0.0.zip and pass that folder (or the one above it) as --root")
RESTORE = "restore {name} from chest-imagenome-dataset-1.0.0.zip; its columns must be: {columns}"
UNZIP = f"unzip {SCENE_GRAPH_ZIP} into {SCENE_GRAPH_DIR}/ (or keep the zip there: the build reads either)"
IMAGES = ("Chest ImaGenome ships no images: download MIMIC-CXR-JPG from PhysioNet and pass its root (holding files/) "
          "as --mimic-root")
TRUNCATED = (f"extract this file again from {SCENE_GRAPH_ZIP} (it is truncated); if the zip's copy is too, re-download "
             "the zip (until then the build rejects it as scene_graph_invalid)")
REDOWNLOAD = "re-download MIMIC-CXR-JPG's {path} from PhysioNet (compare with SHA256SUMS.txt)"


def _gold(root: Path) -> list[Finding]:
    counts, findings = official()["chest-imagenome"], []
    for rel, columns, rows in ((GOLD_BOXES, official()["chest-imagenome"]["gold_columns"], counts["gold_rows"]),
                               (GOLD_SCALING, SCALING_COLUMNS, counts["gold_scaling_rows"])):
        problem, frame = read_csv_checked(root / rel, columns, GET, RESTORE.format(name=rel, columns=",".join(columns)))
        if problem or frame is None:
            findings.append(problem or Finding("error", rel, "unreadable", GET))
            continue
        findings.append(count_finding(rel, frame.height, rows, "rows, columns as expected"))
        if rel == GOLD_BOXES:
            findings.append(count_finding(f"{rel} images", frame["image_id"].n_unique(), counts["gold_images"],
                                          "images"))
    return [*findings, _gold_attributes(root)]


def _gold_attributes(root: Path) -> Finding:
    """The gold attributes TSV: readable, with the columns the build reads; its rows and images."""
    try:
        check_attributes_file(root / GOLD_ATTRIBUTES)
        rows = read_attribute_rows(root / GOLD_ATTRIBUTES)
    except CxrdataError as exc:
        columns = ",".join((*REQUIRED_COLUMNS, "context or relation"))
        return Finding("error", GOLD_ATTRIBUTES, str(exc), RESTORE.format(name=GOLD_ATTRIBUTES, columns=columns))
    return Finding("ok", GOLD_ATTRIBUTES, f"{sum(map(len, rows.values())):,} rows for {len(rows):,} images (TSV)")


def _splits(root: Path) -> tuple[list[Finding], dict[str, str]]:
    """Each split file's columns and rows; and dicom_id -> MIMIC path (.jpg) of every listed image."""
    findings, listed = [], {}
    for name in (*SPLIT_FILES, AVOID_FILE):
        rel = f"{SPLIT_DIR}/{name}"
        problem, frame = read_csv_checked(root / rel, SPLIT_COLUMNS, GET,
                                          RESTORE.format(name=rel, columns=",".join(("", *SPLIT_COLUMNS))))
        if problem or frame is None:
            findings.append(problem or Finding("error", rel, "unreadable", GET))
            continue
        findings.append(count_finding(rel, frame.height, official()["chest-imagenome"]["splits"][name],
                                      "rows, columns as expected"))
        if name != AVOID_FILE:
            for dicom_id, path in frame.select("dicom_id", "path").iter_rows():
                if dicom_id and path:
                    listed[dicom_id] = path.removesuffix(".dcm") + ".jpg"
    return findings, listed


def _scene_graphs(root: Path, listed: dict[str, str], sample: int) -> list[Finding]:
    folder, archive = root / SCENE_GRAPH_DIR, root / SCENE_GRAPH_ZIP
    if folder.is_dir():
        names = {p.name: p for p in folder.glob(f"*{SCENE_GRAPH_SUFFIX}")}
        read = lambda name: names[name].read_bytes()  # noqa: E731
    elif archive.is_file() and zipfile.is_zipfile(archive):
        zipped = zipfile.ZipFile(archive)
        members = {Path(n).name: n for n in zipped.namelist() if n.endswith(SCENE_GRAPH_SUFFIX)}
        names = dict.fromkeys(members)  # type: ignore[arg-type]
        read = lambda name: zipped.read(members[name])  # noqa: E731
    elif archive.is_file():
        return [Finding("error", SCENE_GRAPH_ZIP, "not a zip archive (truncated download?)", f"re-download it; {GET}")]
    else:
        return [Finding("error", SCENE_GRAPH_DIR, f"neither {SCENE_GRAPH_DIR}/ nor {SCENE_GRAPH_ZIP}", GET)]
    findings = [Finding("ok", f"{SCENE_GRAPH_DIR}/", f"{len(names):,} scene graphs")]
    wanted = sorted(f"{d}{SCENE_GRAPH_SUFFIX}" for d in listed)
    missing = [w for w in wanted if w not in names]
    if missing:
        findings.append(Finding("warning", "scene graphs of listed images",
                                f"{len(missing):,} of {len(wanted):,} listed images have none; first: {missing[0]}",
                                f"{UNZIP}; a few ids lack one upstream too (rejected as scene_graph_missing)"))
    for name in evenly_spaced(sorted(names), sample):
        try:
            graph = json.loads(read(name))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            findings.append(Finding("error", name, f"not valid JSON: {exc}", TRUNCATED))
            continue
        keys = official()["chest-imagenome"]["scene_graph_keys"]
        if lacking := [k for k in keys if not isinstance(graph, dict) or k not in graph]:
            findings.append(Finding("warning", name, f"lacks key(s) {', '.join(lacking)}", UNZIP))
    return findings


def _images(listed: dict[str, str], mimic_root: Path | None, sample: int) -> list[Finding]:
    if mimic_root is None:
        return [Finding("warning", "MIMIC-CXR-JPG images", "not checked (no --mimic-root)", IMAGES)]
    if not (mimic_root / "files").is_dir():
        return [Finding("error", "MIMIC-CXR-JPG images", f"{mimic_root / 'files'} does not exist", IMAGES)]
    paths = sorted(set(listed.values()))
    present = {p for p in paths if (mimic_root / p).is_file()}
    return [first_missing("listed images", paths, present, "listed images (.dcm paths read as .jpg)", IMAGES),
            *decode_findings([mimic_root / p for p in sorted(present)], mimic_root,
                             lambda p: decode_jpeg(p.read_bytes(), max_side=64), REDOWNLOAD, sample)]


def diagnose_imagenome(root: Path, mimic_root: Path | None = None, decode: int = SAMPLE_DECODES) -> list[Finding]:
    """Check a Chest ImaGenome download (and, with ``mimic_root``, the MIMIC-CXR-JPG images it lists)."""
    if not root.is_dir():
        return [Finding("error", str(root), "does not exist", GET)]
    root = dataset_dir(root)
    split_findings, listed = _splits(root)
    return _gold(root) + split_findings + _scene_graphs(root, listed, decode) + _images(listed, mimic_root, decode)
