"""The per-image record of a Chest ImaGenome build: its split-file row, its original size, its gold boxes.

Split files give MIMIC *DICOM* paths (``.dcm`` -> ``.jpg`` under ``mimic_root``); a dicom_id that would
name a path outside its folder is rejected ``unsafe_id`` before any file is opened. Boxes come from the
``original_*`` pixels only, normalised by the original size: MIMIC-CXR-JPG metadata ``Columns``/``Rows``
when present, else the JPEG's own size (counted ``original_size_from_image_file``). A gold box row
repeated verbatim is kept once (note ``gold_box_row_duplicate``); two different rows for one (image,
region) reject that box (``rejected_regions`` reason ``box_conflict``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl

from cxrdata.boxes import from_xyxy_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.io.csvfiles import find_file, header, read_text_csv
from cxrdata.sources.imagenome_layout import ORIGINAL
from cxrdata.sources.input_checks import check_file_id, unique_rows
from cxrdata.sources.mimic import METADATA
from cxrdata.sources.regions import Regions, note
from cxrdata.stage import Record, RecordStage

DICOM_PATH = re.compile(r"^files/p\d{2}/p(\d+)/s(\d+)/([^/]+)\.(dcm|jpg)$")
SIZE_COLUMNS = ("dicom_id", "Columns", "Rows")


def original_sizes(mimic_root: Path, dicom_ids: set[str]) -> dict[str, tuple[int, int]]:
    """dicom_id -> (Columns, Rows) from the MIMIC-CXR-JPG metadata, when it is there (a metadata file
    without those columns gives none: the images' own sizes are used, each counted by the row stage)."""
    try:
        path = find_file(mimic_root, METADATA, "metadata")
    except CxrdataError:
        return {}
    if not set(SIZE_COLUMNS) <= set(header(path)):
        return {}
    frame = read_text_csv(path).select(SIZE_COLUMNS).filter(pl.col("dicom_id").is_in(list(dicom_ids)))
    sizes = {}
    for dicom_id, columns, rows in frame.iter_rows():
        try:
            sizes[dicom_id] = (int(float(columns)), int(float(rows)))
        except (TypeError, ValueError):
            continue
    return sizes


@dataclass
class ImagenomeRowStage(RecordStage):
    """The split-file row of an image: ids, view, and the JPEG path under the MIMIC-CXR-JPG root."""

    name: ClassVar[str] = "imagenome-row"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_listed"})
    drops: ClassVar[frozenset[str]] = frozenset({"_listed"})
    gives: ClassVar[frozenset[str]] = frozenset({"dicom_id", "subject_id", "study_id", "view_position", "image_path",
                                                 "_image_file"})
    mimic_root: Path = Path()

    def process(self, record: Record) -> Record:
        check_file_id(record["id"], "dicom_id")
        listed = record.pop("_listed")
        if listed is None:
            raise Rejected("image_not_listed", f"{record['id']} is in no split file (subject and study unknown)")
        match = DICOM_PATH.match(listed["path"] or "")
        if not match or match.group(3) != record["id"]:
            raise Rejected("bad_path", f"path {listed['path']!r} is not files/pXX/pN/sN/{record['id']}.dcm")
        try:
            subject_id, study_id = int(listed["subject_id"]), int(listed["study_id"])
        except (TypeError, ValueError):
            raise Rejected("bad_id", f"subject_id {listed['subject_id']!r} / study_id {listed['study_id']!r}") from None
        image_path = listed["path"][: -len(match.group(4))] + "jpg"
        record.update(dicom_id=record["id"], subject_id=subject_id, study_id=study_id,
                      view_position=listed["ViewPosition"], image_path=image_path,
                      _image_file=str(self.mimic_root / image_path))
        if record.get("_original_size") is None:
            note(record, "original_size_from_image_file")
        return record


@dataclass
class GoldBoxStage(RecordStage):
    """Gold boxes (original pixels, normalised by the original size) as regions; reader = annotator."""

    name: ClassVar[str] = "imagenome-gold-boxes"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_rows", "original_width", "original_height"})
    drops: ClassVar[frozenset[str]] = frozenset({"_rows"})
    gives: ClassVar[frozenset[str]] = frozenset({"regions", "rejected_regions"})

    def process(self, record: Record) -> Record:
        width, height = record["original_width"], record["original_height"]
        regions = Regions(record, "imagenome-gold")
        rows = unique_rows(record.pop("_rows"), record, "gold_box_row_duplicate")
        given = Counter(row["bbox_name"] or "" for row in rows)
        for row in rows:
            name, annotator = row["bbox_name"] or "", row["annotator"]
            if given[name] > 1:
                regions.reject(name, annotator, "box_conflict", f"{given[name]} different rows for {name!r}")
                continue
            box = regions.box(lambda row=row: from_xyxy_pixels(*(float(row[k]) for k in ORIGINAL), width, height),
                              name, annotator)
            if box is not None:
                regions.add(box, name, name, annotator)
        record.update(regions=regions.kept, rejected_regions=regions.rejected)
        return record
