"""MS-CXR phrase/box pairs on MIMIC-CXR-JPG images (FORMATS.md section 2).

The version is read from the CSV header: v1.0.0 has 10 columns, v1.1.0 adds ``split``. Boxes
are COCO xywh integer pixels of the full-resolution image (``image_width`` x ``image_height``),
one row per box: rows are grouped by (dicom_id, label_text) into one record with all its boxes.
v1.0.0 has no split column, so its split is taken from MIMIC-CXR-JPG's official (patient-level)
split file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from cxrdata.anatomy.vocabulary import pathologies
from cxrdata.boxes import check_box, from_xywh_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.pipeline.image_stage import JpegImageStage
from cxrdata.pipeline.stage import Record, RecordStage, Stage
from cxrdata.sources.base import InputFile, canonical_split
from cxrdata.sources.csvfiles import find_file, header, read_text_csv
from cxrdata.sources.mimic import SPLIT

V1_0_COLUMNS = ("dicom_id", "category_name", "label_text", "path", "x", "y", "w", "h", "image_width", "image_height")
V1_1_COLUMNS = (*V1_0_COLUMNS, "split")
CSV_PATTERN = "MS_CXR_Local_Alignment_v*.csv"
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


def find_csv(root: Path) -> Path:
    """The newest ``MS_CXR_Local_Alignment_v*.csv`` in ``root`` (or ``root`` itself if it is the CSV)."""
    if root.is_file():
        return root
    candidates = sorted(root.glob(CSV_PATTERN), key=lambda p: [int(x) for x in re.findall(r"\d+", p.stem)])
    if not candidates:
        raise CxrdataError(f"no MS-CXR CSV ({CSV_PATTERN}) in {root}")
    return candidates[-1]


@dataclass
class MsCxrRowStage(RecordStage):
    """Validates one (dicom_id, phrase) group: its path, ids, category, split and boxes."""

    name: ClassVar[str] = "ms-cxr-row"
    version: ClassVar[str] = "1"
    mimic_root: Path = Path()

    def process(self, record: Record) -> Record:
        rows: list[dict[str, Any]] = record.pop("_rows")
        first = rows[0]
        path = first["path"] or ""
        target = (self.mimic_root / path).resolve()
        if not target.is_relative_to(self.mimic_root.resolve()):
            raise Rejected("path_escapes_root", f"path {path!r} points outside the MIMIC-CXR-JPG root")
        match = MIMIC_PATH.match(path)
        if not match:
            raise Rejected("bad_path", f"path {path!r} is not files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg")
        if match.group(3) != first["dicom_id"]:
            raise Rejected("path_id_mismatch", f"path {path!r} does not end in dicom_id {first['dicom_id']}")
        if first["category_name"] not in pathologies():
            raise Rejected("unknown_category", f"category {first['category_name']!r} is not one of the 8")
        if record["split"] is None:
            raise Rejected("split_missing", f"no split for {first['dicom_id']} ({record.pop('_split_raw', None)!r})")
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
        record.update(
            dicom_id=first["dicom_id"], subject_id=int(match.group(1)), study_id=int(match.group(2)),
            category=first["category_name"], phrase=first["label_text"], boxes=boxes, image_path=path,
            _image_file=str(target), _original_size=(width, height),
        )
        return record


@dataclass
class MsCxrSource:
    """MS-CXR phrases with their boxes, one record per (dicom_id, label_text)."""

    root: Path  # the folder holding MS_CXR_Local_Alignment_v*.csv, or the CSV itself
    mimic_root: Path
    image_size: int = 512
    image_format: str = "jpeg"
    dataset: ClassVar[str] = "ms-cxr"
    config: str = "ms-cxr"
    schema: ClassVar[str] = "ms-cxr"
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    excluded: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root, self.mimic_root = Path(self.root), Path(self.mimic_root)

    @property
    def csv(self) -> Path:
        return find_csv(self.root)

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

    def inputs(self) -> list[InputFile]:
        return [InputFile(str(self.csv), self.csv.stat().st_size)]

    def describe(self) -> dict[str, Any]:
        return {"ms_cxr_version": self.ms_cxr_version, "csv": self.csv.name,
                "image_size": self.image_size, "image_format": self.image_format}

    def records_per_task(self) -> int:
        return {"path": 50_000}.get(self.image_format, 400 if self.image_size == 0 else 4_000)

    def _splits(self, frame: pl.DataFrame) -> pl.DataFrame:
        if "split" in frame.columns:
            return frame
        split = read_text_csv(find_file(self.mimic_root, SPLIT, "split")).select("dicom_id", "split")
        return frame.join(split.unique("dicom_id", keep="first"), on="dicom_id", how="left")

    def records(self) -> list[Record]:
        version = self.ms_cxr_version
        frame = self._splits(read_text_csv(self.csv)).with_row_index("_row")
        records: list[Record] = []
        phrases_seen: Counter[str] = Counter()
        for (dicom_id, _label), group in frame.group_by(["dicom_id", "label_text"], maintain_order=True):
            rows = group.sort("_row").to_dicts()
            index = phrases_seen[dicom_id]
            phrases_seen[dicom_id] += 1
            match = MIMIC_PATH.match(rows[0]["path"] or "")
            records.append({
                "id": f"{dicom_id}/{index}", "dicom_id": dicom_id, "split": canonical_split(rows[0]["split"]),
                "ms_cxr_version": version, "_split_raw": rows[0]["split"], "_rows": rows,
                "_partition": match.group(1) if match else dicom_id,
            })
        return records

    def stages(self) -> list[Stage]:
        return [MsCxrRowStage(mimic_root=self.mimic_root),
                JpegImageStage(max_side=self.image_size, image_format=self.image_format)]
