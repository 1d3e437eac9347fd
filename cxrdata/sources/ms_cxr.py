"""MS-CXR phrase/box pairs on MIMIC-CXR-JPG images (FORMATS.md section 2, docs/formats/ms-cxr.md).

``--root`` is the CSV, one version folder, or the PhysioNet project folder holding ``0.1/`` and
``1.1.0/``: the newest ``MS_CXR_Local_Alignment_v*.csv`` found there (or one folder down) is read,
and which one is said in the manifest and the build's summary. The version is read from the CSV
header: v1.0.0 has 10 columns, v1.1.0 adds ``split``; v1.0.0 takes its split from MIMIC-CXR-JPG's
official (patient-level) split file.

Boxes are COCO xywh integer pixels of the full-resolution image, one row per box. Rows are grouped
by (dicom_id, category_name, label_text): the real v1.1.0 files one phrase under two categories on
the same image with the same boxes, and those stay two records. A record's id is
``<dicom_id>/<k>``, k counting that image's (category, phrase) groups in order of first appearance
in the CSV, so ids are unique and the same for the same file. A row repeated verbatim inside a
group is kept once (note ``duplicate_row``); rows of one image that disagree on a per-image column
(path, image_width, image_height, split) are conflicting, and every record of that image is
rejected ``conflicting_rows``: which row is right cannot be known.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from cxrdata.boxes import check_box, from_xywh_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.stages import ImageStage, JpegImageStage
from cxrdata.io.csvfiles import find_file, header, read_text_csv
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile, canonical_split
from cxrdata.sources.input_checks import check_file_id, inside
from cxrdata.sources.mimic import DICOM_ID, SPLIT
from cxrdata.sources.versions import mimic_version, ms_cxr_version
from cxrdata.stage import Record, RecordStage, Stage
from cxrdata.vocabulary import pathologies

V1_0_COLUMNS = ("dicom_id", "category_name", "label_text", "path", "x", "y", "w", "h", "image_width", "image_height")
V1_1_COLUMNS = (*V1_0_COLUMNS, "split")
GROUP_KEY = ("dicom_id", "category_name", "label_text")
IMAGE_COLUMNS = ("path", "image_width", "image_height", "split")  # one value per image
CSV_PATTERN = "MS_CXR_Local_Alignment_v*.csv"
CSV_VERSION = re.compile(r"^MS_CXR_Local_Alignment_v(\d+(?:\.\d+)*)\.csv$")
MIMIC_PATH = re.compile(r"^files/p\d{2}/p(\d{8})/s(\d{8})/([^/]+)\.jpg$")


def detect_version(columns: list[str], path: Path) -> str:
    """"1.0.0" or "1.1.0" from the header; anything else is refused naming what is missing."""
    if columns == list(V1_1_COLUMNS) or (set(V1_1_COLUMNS) <= set(columns)):
        return "1.1.0"
    if set(V1_0_COLUMNS) <= set(columns):
        return "1.0.0"
    missing = [c for c in V1_0_COLUMNS if c not in columns]
    raise CxrdataError(f"{path.name}: not an MS-CXR CSV, missing column(s) {', '.join(missing)} "
                       f"(found: {', '.join(columns)})")


@dataclass(frozen=True)
class CsvChoice:
    """The CSV a build reads, and every MS-CXR CSV that was found beside it."""

    root: Path
    csv: Path
    found: tuple[Path, ...]  # newest first; ``csv`` is the first

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    @property
    def summary(self) -> str:
        """One line for the build's output: which file, and what else was there."""
        others = [self.relative(p) for p in self.found[1:]]
        also = f", the newest of {len(self.found)} found (also {', '.join(others)})" if others else ""
        return f"MS-CXR: reading {self.relative(self.csv)}{also}"


def _file_version(path: Path) -> tuple[int, ...]:
    match = CSV_VERSION.match(path.name)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def choose_csv(root: Path) -> CsvChoice:
    """The newest ``MS_CXR_Local_Alignment_v*.csv`` in ``root`` or one folder down (``root`` itself if a file).

    Two different files of the same newest version (e.g. an old unzip beside the download) are refused.
    """
    if root.is_file():
        return CsvChoice(root.parent, root, (root,))
    if not root.is_dir():
        raise CxrdataError(f"MS-CXR root {root} does not exist")
    found = sorted({*root.glob(CSV_PATTERN), *root.glob(f"*/{CSV_PATTERN}")},
                   key=lambda p: ([-v for v in _file_version(p)], len(p.relative_to(root).parts), str(p)))
    if not found:
        raise CxrdataError(f"no MS-CXR CSV ({CSV_PATTERN}) in {root} or in its version folders (0.1/, 1.1.0/)")
    newest = [p for p in found if _file_version(p) == _file_version(found[0])]
    different = [p for p in newest[1:] if p.read_bytes() != found[0].read_bytes()]
    if different:
        raise CxrdataError(f"two different copies of {found[0].name} in {root}: {found[0].relative_to(root)} and "
                           f"{different[0].relative_to(root)}; keep one, or pass the CSV itself as --root")
    return CsvChoice(root, found[0], tuple(found))


def find_csv(root: Path) -> Path:
    """The CSV :func:`choose_csv` picks."""
    return choose_csv(root).csv


def image_conflicts(frame: pl.DataFrame) -> dict[str, str]:
    """dicom_id -> why its rows conflict, for images whose rows disagree on a per-image column."""
    columns = [c for c in IMAGE_COLUMNS if c in frame.columns]
    counts = frame.group_by("dicom_id").agg(pl.col(c).n_unique() for c in columns)
    conflicts = {}
    for row in counts.filter(pl.any_horizontal(pl.col(c) > 1 for c in columns)).iter_rows(named=True):
        column = next(c for c in columns if row[c] > 1)
        values = frame.filter(pl.col("dicom_id") == row["dicom_id"])[column].unique(maintain_order=True).to_list()
        conflicts[row["dicom_id"]] = f"rows of image {row['dicom_id']} disagree on {column}: {values}"
    return conflicts


def unique_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows without verbatim repeats (first kept, CSV order), and how many repeats were dropped."""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        kept.setdefault(tuple(v for k, v in row.items() if k != "_row"), row)
    return list(kept.values()), len(rows) - len(kept)


@dataclass
class MsCxrRowStage(RecordStage):
    """Validates one (dicom_id, category, phrase) group: its ids, path, category, split and boxes."""

    name: ClassVar[str] = "ms-cxr-row"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_rows"})
    drops: ClassVar[frozenset[str]] = frozenset({"_rows", "_split_raw", "_conflict", "_duplicate_rows"})
    gives: ClassVar[frozenset[str]] = frozenset({"dicom_id", "subject_id", "study_id", "category", "phrase", "boxes",
                                                 "image_path", "_image_file", "_original_size"})
    mimic_root: Path = Path()  # resolved once by the source

    def process(self, record: Record) -> Record:
        rows: list[dict[str, Any]] = record.pop("_rows")
        first = rows[0]
        dicom_id, path = first["dicom_id"] or "", first["path"] or ""
        if dicom_id:
            check_file_id(dicom_id, "dicom_id")
        if not DICOM_ID.match(dicom_id):
            raise Rejected("bad_id", f"dicom_id {dicom_id!r} is not 5 groups of 8 hex digits")
        if conflict := record.pop("_conflict", None):
            raise Rejected("conflicting_rows", conflict)
        target = inside(self.mimic_root, path)
        if target is None:
            raise Rejected("path_escapes_root", f"path {path!r} points outside the MIMIC-CXR-JPG root")
        match = MIMIC_PATH.match(path)
        if not match:
            raise Rejected("bad_path", f"path {path!r} is not files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg")
        if match.group(3) != dicom_id:
            raise Rejected("path_id_mismatch", f"path {path!r} does not end in dicom_id {dicom_id}")
        if first["category_name"] not in pathologies():
            raise Rejected("unknown_category", f"category {first['category_name']!r} is not one of the 8")
        if record["split"] is None:
            raise Rejected("split_missing", f"no split for {dicom_id} ({record.pop('_split_raw', None)!r})")
        try:
            width, height = int(first["image_width"]), int(first["image_height"])
            pixel_boxes = [tuple(float(r[k]) for k in "xywh") for r in rows]
        except (TypeError, ValueError):
            raise Rejected("bad_number", "a box or image size cell is not a number") from None
        if width <= 0 or height <= 0:
            raise Rejected("bad_image_size", f"image size {width}x{height}")
        boxes = []
        for pixel_box in pixel_boxes:
            box, clipped = check_box(from_xywh_pixels(*pixel_box, width, height))
            if clipped:
                record.setdefault("_notes", []).append("box_clipped")
            boxes.append(list(box))
        record.setdefault("_notes", []).extend(["duplicate_row"] * record.pop("_duplicate_rows", 0))
        record.update(
            dicom_id=dicom_id, subject_id=int(match.group(1)), study_id=int(match.group(2)),
            category=first["category_name"], phrase=first["label_text"], boxes=boxes, image_path=path,
            _image_file=str(target), _original_size=(width, height),
        )
        return record


@dataclass(frozen=True)
class MsCxrOptions:
    """``cxrdata build ms-cxr``: the MS-CXR download and the MIMIC-CXR-JPG images it points to."""

    root: Path = option(help="MS-CXR project folder (holding 0.1/ and 1.1.0/: the newest is read), a version "
                             "folder, or the CSV.")
    mimic_root: Path = option(help="MIMIC-CXR-JPG root holding the images.")


@dataclass
class MsCxrSource:
    """MS-CXR phrases with their boxes, one record per (dicom_id, category, label_text)."""

    options: MsCxrOptions
    dataset: ClassVar[str] = "ms-cxr"
    image: ClassVar[type[ImageStage]] = JpegImageStage
    config: str = "ms-cxr"
    schema: str = "ms-cxr"
    splits: tuple[str, ...] = ("train", "validation", "test")
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.options.root

    @property
    def mimic_root(self) -> Path:
        return self.options.mimic_root

    @property
    def choice(self) -> CsvChoice:
        return choose_csv(self.root)

    @property
    def csv(self) -> Path:
        return self.choice.csv

    @property
    def ms_cxr_version(self) -> str:
        return detect_version(header(self.csv), self.csv)

    def check(self) -> None:
        if not self.root.exists():
            raise CxrdataError(f"MS-CXR root {self.root} does not exist")
        if not (self.mimic_root / "files").is_dir():
            raise CxrdataError(f"MIMIC-CXR-JPG images folder {self.mimic_root / 'files'} does not exist "
                               "(MS-CXR ships no images; pass --mimic-root)")
        if self.ms_cxr_version == "1.0.0":
            find_file(self.mimic_root, SPLIT, "MIMIC-CXR-JPG split file (MS-CXR v1.0.0 has no split column)")
        if read_text_csv(self.csv).height == 0:
            raise CxrdataError(f"{self.csv} has a header but no rows: download it again")

    def inputs(self) -> list[InputFile]:
        return [InputFile(str(self.csv), self.csv.stat().st_size)]

    def describe(self) -> dict[str, Any]:
        choice = self.choice
        return {"ms_cxr_version": self.ms_cxr_version, "csv": choice.relative(choice.csv),
                "csvs_found": [choice.relative(p) for p in choice.found]}

    def versions(self) -> dict[str, dict[str, str]]:
        found = {self.dataset: ms_cxr_version(self.root, self.describe()),
                 "mimic-cxr-jpg": mimic_version(self.mimic_root)}
        return {name: entry for name, entry in found.items() if entry}

    def record_keys(self) -> frozenset[str]:
        return frozenset({"dicom_id", "ms_cxr_version", "_split_raw", "_rows", "_duplicate_rows", "_conflict"})

    def filters(self) -> list[Any]:
        return []

    def notices(self) -> list[str]:
        """Lines the build prints after its summary."""
        return [self.choice.summary]

    def _splits(self, frame: pl.DataFrame) -> pl.DataFrame:
        if "split" in frame.columns:
            return frame
        split = read_text_csv(find_file(self.mimic_root, SPLIT, "split")).select("dicom_id", "split")
        return frame.join(split.unique("dicom_id", keep="first"), on="dicom_id", how="left", maintain_order="left")

    def records(self) -> list[Record]:
        version = self.ms_cxr_version
        frame = self._splits(read_text_csv(self.csv)).with_row_index("_row")
        conflicts = image_conflicts(frame)
        records: list[Record] = []
        phrases_seen: Counter[str | None] = Counter()
        for (dicom_id, _category, _label), group in frame.group_by(list(GROUP_KEY), maintain_order=True):
            rows, repeats = unique_rows(group.sort("_row").to_dicts())
            index = phrases_seen[dicom_id]
            phrases_seen[dicom_id] += 1
            match = MIMIC_PATH.match(rows[0]["path"] or "")
            line = int(rows[0]["_row"]) + 2  # the CSV line of the group's first row (line 1 is the header)
            records.append({
                "id": f"{dicom_id}/{index}" if dicom_id else f"line-{line}", "dicom_id": dicom_id,
                "split": canonical_split(rows[0]["split"]), "ms_cxr_version": version,
                "_split_raw": rows[0]["split"], "_rows": rows, "_duplicate_rows": repeats,
                "_conflict": conflicts.get(dicom_id), "_partition": match.group(1) if match else str(dicom_id),
            })
        return records

    def stages(self, image: ImageStage) -> list[Stage]:
        return [MsCxrRowStage(mimic_root=self.mimic_root.resolve()), image]


ENTRY = DatasetEntry(
    name="ms-cxr",
    summary="MS-CXR phrases and boxes on MIMIC-CXR-JPG images (v1.0.0 or v1.1.0, from the header).",
    options=MsCxrOptions,
    source_classes=(MsCxrSource,),
    doctor="cxrdata.sources.doctor.ms_cxr:diagnose_ms_cxr",
    doctor_summary="MS-CXR (+ the MIMIC-CXR-JPG images it points to).",
    sample="cxrdata.sample.mimic:write_mimic_sample",
    sample_tree="mimic",
    sample_paths={"root": "ms-cxr", "mimic_root": ""},
)
