"""NIH ChestX-ray14: one image's Data_Entry row, split lists and box rows -> checked, typed columns.

Per-record problems (docs/formats/chestxray14.md) become rejects or counted notes, never silent coercions:

* Data_Entry rows of one image: a verbatim repeat is kept once (``data_entry_row_duplicate``); two
  different rows reject the image (``data_entry_conflict``); a cell in an unnamed column (past the header's
  trailing comma) rejects it too (``extra_cells``: the row does not line up with the header).
* the split lists: in neither ``split_missing``, in both ``split_conflict``, listed twice in one a note.
* ``Patient ID`` must be the number the file name starts with (``patient_id_mismatch``): the lists are
  patient-disjoint and the id is what keeps them so.
* ``Patient Age``: ``58`` (v2020) or ``058Y`` (2017) are years; ``011M`` months and ``005D`` days become
  completed years (0) with a note (``age_in_months`` / ``age_in_days``); an age over 120 (the 2017 table
  has 148-155 and 411-414, which v2020 corrected) becomes null, noted ``age_implausible``.
* ``Finding Labels``: the 15 labels split at ``|``; an unknown one ``label_unknown``; ``No Finding`` beside a
  finding ``labels_conflict``; a repeated label is kept once (``label_repeated``).
* boxes: xywh pixels of the 1024 x 1024 grid the release's PNGs have, whatever size the PNG on disk is (a
  resized copy's boxes are still on that grid; such an image is noted ``image_not_1024``). A verbatim
  repeated box row is kept once (``box_row_duplicate``); ``Infiltrate`` is stored as ``Infiltration``
  (``box_label_respelled``); a class with no boxes in the release or a cell past ``h`` is a rejected region.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.boxes import from_xywh_pixels
from cxrdata.errors import Rejected
from cxrdata.sources.input_checks import check_file_id, unique_rows
from cxrdata.sources.regions import Regions, note
from cxrdata.stage import Record, RecordStage
from cxrdata.targets.box_classes import BoxClasses

SOURCE = "chestx-ray14"
# The tables' header cells (the bracketed names split in two) -> the record keys the stages read.
ENTRY_COLUMNS = {
    "Image Index": "image_index", "Finding Labels": "labels", "Follow-up #": "follow_up", "Patient ID": "patient_id",
    "Patient Age": "age", "Patient Gender": "sex", "View Position": "view", "OriginalImage[Width": "acquired_width",
    "Height]": "acquired_height", "OriginalImagePixelSpacing[x": "spacing_x", "y]": "spacing_y",
}
ENTRY_ALIASES = {"Patient Sex": "Patient Gender"}  # a later spelling of the column in some copies
BOX_COLUMNS = {"Image Index": "image_index", "Finding Label": "label", "Bbox [x": "x", "y": "y", "w": "w", "h]": "h"}
ENTRY_HEADER = {key: name for name, key in ENTRY_COLUMNS.items()}
BOX_CLASSES = BoxClasses.load("cxrdata.sources", "chestxray14_box_classes.yaml", rows="_boxes", column="label")
LABELS = (*BOX_CLASSES.local_labels, *BOX_CLASSES.image_level_labels)  # the 15 values of Finding Labels
NO_FINDING = "No Finding"
BOX_GRID = 1024
AGE_LIMIT = 120
AGE = re.compile(r"^(\d+)([YMD]?)$")
UNNAMED = re.compile(r"^(|_duplicated_\d+|Unnamed: \d+)$")  # a header cell after a trailing comma
SEXES, VIEWS = ("M", "F"), ("PA", "AP")


def extra_cells(row: dict[str, Any]) -> list[str]:
    """The non-empty cells of a row's unnamed columns (the header's trailing commas)."""
    return [str(v) for k, v in row.items() if UNNAMED.match(k) and v not in (None, "")]


def whole_number(value: Any, reason: str, what: str) -> int:
    text = "" if value is None else str(value).strip()
    if not text.isdigit():
        raise Rejected(reason, f"{what} {value!r} is not a whole number")
    return int(text)


def positive_number(value: Any, reason: str, what: str) -> float:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise Rejected(reason, f"{what} {value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise Rejected(reason, f"{what} {value!r} is not a positive number")
    return number


def age_years(value: Any, record: Record) -> int | None:
    """Completed years from ``58``, ``058Y``, ``011M`` or ``005D``; None (noted) when missing or implausible."""
    text = "" if value is None else str(value).strip()
    if not text:
        note(record, "age_missing")
        return None
    match = AGE.match(text)
    if match is None:
        raise Rejected("age_invalid", f"Patient Age {value!r} is neither years (58, 058Y), months (011M) nor days")
    number, unit = int(match.group(1)), match.group(2)
    if unit in ("M", "D"):
        note(record, "age_in_months" if unit == "M" else "age_in_days")
        number = number // (12 if unit == "M" else 365)
    if number > AGE_LIMIT:
        note(record, "age_implausible")
        return None
    return number


def finding_labels(value: Any, record: Record) -> list[str]:
    labels = [part.strip() for part in str(value or "").split("|")]
    if not any(labels):
        raise Rejected("labels_missing", "Finding Labels is empty")
    unknown = [label for label in labels if label not in LABELS]
    if unknown:
        raise Rejected("label_unknown", f"{', '.join(map(repr, unknown))} not among the 15 ChestX-ray14 labels")
    kept = list(dict.fromkeys(labels))
    if len(kept) < len(labels):
        note(record, "label_repeated")
    if NO_FINDING in kept and len(kept) > 1:
        raise Rejected("labels_conflict", f"'No Finding' beside {', '.join(k for k in kept if k != NO_FINDING)}")
    return kept


def one_of(value: Any, allowed: tuple[str, ...], reason: str, what: str) -> str:
    text = "" if value is None else str(value).strip()
    if text not in allowed:
        raise Rejected(reason, f"{what} {value!r} is not {' or '.join(allowed)}")
    return text


@dataclass
class ChestXray14RowStage(RecordStage):
    """Checks one image's Data_Entry row, split lists and file, and types its columns, before any decoding."""

    name: ClassVar[str] = "chestxray14-row"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"image_index", "_entry_rows", "_lists", "_image_paths"})
    gives: ClassVar[frozenset[str]] = frozenset({"patient_id", "follow_up", "labels", "view", "age", "sex",
                                                 "acquired_width", "acquired_height", "acquired_pixel_spacing",
                                                 "_image_file"})
    drops: ClassVar[frozenset[str]] = frozenset({"_entry_rows", "_lists", "_image_paths"})
    root: Path = Path()

    def process(self, record: Record) -> Record:
        name = check_file_id(record["image_index"], "Image Index")
        row = self._entry_row(record)
        self._check_split(record)
        paths = record.pop("_image_paths")
        if not paths:
            raise Rejected("image_missing", f"{name} is in no images/ or images_NNN/images/ folder of {self.root}")
        if len(paths) > 1:
            raise Rejected("image_duplicate", f"{name} is in {len(paths)} image folders: {', '.join(paths)}")
        patient = whole_number(row["patient_id"], "patient_id_invalid", "Patient ID")
        prefix = name.split("_", 1)[0]
        if not prefix.isdigit() or int(prefix) != patient:
            raise Rejected("patient_id_mismatch", f"Patient ID {row['patient_id']!r} but the file name says {prefix}")
        spacing = [positive_number(row[k], "pixel_spacing_invalid", "OriginalImagePixelSpacing")
                   for k in ("spacing_x", "spacing_y")]
        record.update(
            patient_id=patient, follow_up=whole_number(row["follow_up"], "follow_up_invalid", "Follow-up #"),
            labels=finding_labels(row["labels"], record),
            view=one_of(row["view"], VIEWS, "view_invalid", "View Position"),
            age=age_years(row["age"], record), sex=one_of(row["sex"], SEXES, "sex_invalid", "Patient Gender"),
            acquired_width=whole_number(row["acquired_width"], "acquired_size_invalid", "OriginalImage width"),
            acquired_height=whole_number(row["acquired_height"], "acquired_size_invalid", "OriginalImage height"),
            acquired_pixel_spacing=spacing, _image_file=str(self.root / paths[0]),
        )
        return record

    @staticmethod
    def _entry_row(record: Record) -> dict[str, Any]:
        rows = unique_rows(record.pop("_entry_rows"), record, "data_entry_row_duplicate")
        if len(rows) > 1:
            differ = sorted({ENTRY_HEADER.get(k, k) for r in rows[1:] for k in r if r[k] != rows[0].get(k)})
            raise Rejected("data_entry_conflict", f"{len(rows)} different Data_Entry rows, differing in "
                                                  f"{', '.join(differ)}")
        if extra := extra_cells(rows[0]):
            raise Rejected("extra_cells", f"cells past the named columns: {', '.join(extra)}")
        return rows[0]

    @staticmethod
    def _check_split(record: Record) -> None:
        lists, name = record.pop("_lists"), record["image_index"]
        listed = [split for split, times in lists.items() if times]
        if not listed:
            raise Rejected("split_missing", f"{name} is in neither train_val_list.txt nor test_list.txt")
        if len(listed) > 1:
            raise Rejected("split_conflict", f"{name} is in both train_val_list.txt and test_list.txt")
        if lists[listed[0]] > 1:
            note(record, "split_list_line_duplicate")


@dataclass
class ChestXray14BoxStage(RecordStage):
    """BBox_List_2017.csv rows of one image -> canonical regions (after the image stage: it notes a PNG that
    is not the release's 1024 x 1024; the boxes are on that grid either way)."""

    name: ClassVar[str] = "chestxray14-boxes"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"_boxes", "labels", "original_width", "original_height"})
    gives: ClassVar[frozenset[str]] = frozenset({"regions", "rejected_regions", "_classes_present"})
    drops: ClassVar[frozenset[str]] = frozenset({"_boxes"})

    def process(self, record: Record) -> Record:
        if (record["original_width"], record["original_height"]) != (BOX_GRID, BOX_GRID):
            note(record, "image_not_1024")
        regions = Regions(record, SOURCE)
        rows = unique_rows(record.pop("_boxes"), record, "box_row_duplicate")
        for row in rows:
            written = str(row["label"] or "")
            label = BOX_CLASSES.canonical(written)
            if label != written:
                note(record, "box_label_respelled")
            if extra := extra_cells(row):
                regions.reject(label, None, "box_row_malformed", f"cells after h: {', '.join(extra)}")
            elif label not in BOX_CLASSES.local_labels:
                regions.reject(written, None, "box_label_unknown", f"{written!r} is not a ChestX-ray14 box class")
            else:
                if label not in record["labels"]:
                    note(record, "box_label_not_in_labels")
                box = regions.box(lambda row=row: from_xywh_pixels(
                    *(float(row[k]) for k in ("x", "y", "w", "h")), BOX_GRID, BOX_GRID), label)
                if box is not None:
                    regions.add(box, label, label)
        present = {BOX_CLASSES.canonical(str(row["label"] or "")) for row in rows}
        record.update(regions=regions.kept, rejected_regions=regions.rejected,
                      _classes_present=frozenset(present & set(BOX_CLASSES.local_labels)))
        return record
