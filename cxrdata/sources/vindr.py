"""VinDr-CXR 1.0.0 (PhysioNet): DICOM images with every reader's boxes (FORMATS.md section 4).

One record per image. Quirks handled here: the reader column may be spelled ``rad_id`` or
``rad_ID`` or be absent (test = consensus, reader ``"consensus"``); the image-label column is
``Other diseases`` in train and ``Other disease`` in test (output: ``Other diseases``); ``No finding``
rows have empty coordinates; boxes are xyxy pixels of the DICOM grid, so the image stage (which
reads Rows/Columns) runs before the box stage. Raw boxes are always kept; ``fuse`` adds a fused
view beside them. Only whitelisted DICOM header fields reach the output, never patient tags.

Images are shown with ``dicom_display`` (``stretch`` by default, the published readers' choice;
``window`` for the strict PS3.3 window; FORMATS.md §4.2). Input checks (docs/formats/vindr-cxr.md):
an image id that would name a path outside ``train/``/``test/`` is rejected ``unsafe_id``; an
annotation row repeated verbatim is kept once (note ``annotation_row_duplicate``): boxes of one
class that differ in any cell are distinct boxes, never a conflict (a reader may draw two nodules,
three readers may draw one each). Label rows are one per (image, reader): a verbatim repeat is kept
once (``label_row_duplicate``), two different rows for one reader contradict each other and reject
the image (``image_labels_conflict``), and a label cell other than 0/1/empty rejects it too
(``label_invalid``), never read as "absent".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from cxrdata.boxes import from_xyxy_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.dicom_stage import DicomImageStage
from cxrdata.imaging.stages import ImageStage
from cxrdata.io.csvfiles import read_text_csv, require_columns
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile
from cxrdata.sources.fusion import FUSE_MODES, ReaderBox, fuse
from cxrdata.sources.input_checks import check_file_id, unique_rows
from cxrdata.sources.regions import Regions, note
from cxrdata.sources.versions import folder_version
from cxrdata.stage import Record, RecordStage, Stage
from cxrdata.targets.box_classes import BoxClasses

ANNOTATIONS = {"train": "annotations/annotations_train.csv", "test": "annotations/annotations_test.csv"}
IMAGE_LABELS = {"train": "annotations/image_labels_train.csv", "test": "annotations/image_labels_test.csv"}
BOX_COLUMNS = ("image_id", "class_name", "x_min", "y_min", "x_max", "y_max")
RENAME = {"rad_ID": "rad_id", "Other disease": "Other diseases"}
DICOM_FIELDS = ("PhotometricInterpretation", "BitsStored", "TransferSyntaxUID")
NO_FINDING = "No finding"
CONSENSUS = "consensus"
SOURCE = "vindr-cxr"
BOX_CLASSES = BoxClasses.load("cxrdata.sources", "vindr_box_classes.yaml", rows="_rows", column="class_name")


def _reader(value: Any) -> str:
    return str(value).strip() if value not in (None, "") else CONSENSUS


def _pixels(row: dict[str, Any], width: int, height: int) -> Sequence[float]:
    return from_xyxy_pixels(*(float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")), width, height)


LABEL_TRUE, LABEL_FALSE = ("1", "1.0"), ("0", "0.0")


@dataclass
class VindrRowStage(RecordStage):
    """Checks the image id (it names the DICOM file) and the record's CSV rows before any decoding."""

    name: ClassVar[str] = "vindr-row"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"image_id", "_rows", "_labels"})
    gives: ClassVar[frozenset[str]] = frozenset({"_image_file"})
    root: Path = Path()

    def process(self, record: Record) -> Record:
        image_id = check_file_id(record["image_id"], "image_id")
        record["_rows"] = unique_rows(record["_rows"], record, "annotation_row_duplicate")
        record["_labels"] = _one_label_row_per_reader(unique_rows(record["_labels"], record, "label_row_duplicate"))
        record["_image_file"] = str(self.root / record["split"] / f"{image_id}.dicom")
        return record


def _one_label_row_per_reader(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The label rows, after refusing two different rows of one reader (they contradict each other)."""
    by_reader: dict[str, dict[str, Any]] = {}
    for row in rows:
        reader = _reader(row.get("rad_id"))
        if reader in by_reader:
            differ = sorted(k for k in row if row[k] != by_reader[reader].get(k))
            raise Rejected("image_labels_conflict",
                           f"reader {reader} has two label rows differing in {', '.join(differ)}")
        by_reader[reader] = row
    return rows


@dataclass
class VindrBoxStage(RecordStage):
    """Every reader's boxes -> canonical regions; image-level labels per reader; optional fused view."""

    name: ClassVar[str] = "vindr-boxes"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_rows", "_labels", "original_width", "original_height"})
    drops: ClassVar[frozenset[str]] = frozenset({"_rows", "_labels", "_dicom_header"})
    gives: ClassVar[frozenset[str]] = frozenset({"regions", "rejected_regions", "fused_regions", "no_finding_readers",
                                                 "image_labels", "dicom", "_fuse", "_classes_present"})
    fuse: str = "none"
    iou: float = 0.1

    def fingerprint(self) -> str:
        return f"{self.name}@{self.version}:{self.fuse}:{self.iou}"

    def process(self, record: Record) -> Record:
        width, height = record["original_width"], record["original_height"]
        regions, no_finding = Regions(record, SOURCE), []
        rows = record.pop("_rows")
        for row in rows:
            reader, label = _reader(row.get("rad_id")), row["class_name"] or ""
            if label == NO_FINDING:
                no_finding.append(reader)
                continue
            box = regions.box(lambda row=row: _pixels(row, width, height), label, reader)
            if box is not None:
                regions.add(box, label, label, reader)
        readers = {r["reader"] for r in regions.kept} | set(no_finding)
        fused = fuse([ReaderBox(tuple(r["box"]), r["label"], r["reader"]) for r in regions.kept],  # type: ignore[arg-type]
                     self.fuse, self.iou, n_readers=len(readers) or None)
        header = record.pop("_dicom_header", None) or {}
        record.update(
            regions=regions.kept,
            rejected_regions=regions.rejected,
            fused_regions=[{"box": list(f.box), "label": f.label, "readers": list(f.readers), "score": f.score}
                           for f in fused],
            no_finding_readers=no_finding,
            image_labels=_labels(record.pop("_labels"), record),
            dicom={k: header.get(k) for k in DICOM_FIELDS},
            _fuse=self.fuse,  # which view fused_regions is (a later stage may prefer it to the raw boxes)
            _classes_present=frozenset(row["class_name"] for row in rows if row["class_name"] != NO_FINDING),
        )
        return record


def _labels(rows: list[dict[str, Any]], record: Record) -> list[dict[str, Any]]:
    """Per reader (``consensus`` for test): the image-level labels marked 1; empty cells are noted,
    any other value than 0/1 rejects the record (it is neither "present" nor "absent")."""
    out = []
    for row in rows:
        positive = []
        for name, value in row.items():
            if name in ("image_id", "rad_id"):
                continue
            cell = "" if value is None else str(value).strip()
            if not cell:
                note(record, "label_missing")
            elif cell in LABEL_TRUE:
                positive.append(name)
            elif cell not in LABEL_FALSE:
                raise Rejected("label_invalid", f"reader {_reader(row.get('rad_id'))}, {name}: {value!r} is not 0 or 1")
        out.append({"reader": _reader(row.get("rad_id")), "labels": positive})
    return out


SPLITS = ("train", "test")


@dataclass(frozen=True)
class VindrOptions:
    """``cxrdata build vindr``: the download, the readers' fused view, and the splits kept."""

    root: Path = option(help="VinDr-CXR root (holds annotations/, train/, test/).")
    fuse: Literal["none", "union", "wbf"] = option(
        "none", "Add a fused view of the readers' boxes beside the raw ones (never replaces them).", choices=FUSE_MODES)
    iou: float = option(0.1, "Boxes of one label overlapping more than this are fused.", bounds=(0.0, 1.0, True))
    splits: tuple[str, ...] = option(SPLITS, "Splits kept (train, test); the others are counted as excluded.",
                                     cli=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou < 1.0:
            raise ValueError(f"--iou must be in [0, 1), not {self.iou}")
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise ValueError(f"VinDr-CXR splits are {', '.join(SPLITS)}; got {', '.join(self.splits) or 'none'}")
        object.__setattr__(self, "splits", tuple(s for s in SPLITS if s in self.splits))


@dataclass(frozen=True)
class SplitFilter:
    """Images of the splits not kept become no record (counted ``image_in_other_split``)."""

    splits: tuple[str, ...]
    name: str = "splits"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        kept = [r for r in records if r["split"] in self.splits]
        return kept, Counter({"image_in_other_split": len(records) - len(kept)} if len(kept) < len(records) else {})


@dataclass
class VindrSource:
    """VinDr-CXR train (3 readers) and test (consensus) images with boxes and image-level labels."""

    options: VindrOptions
    dataset: ClassVar[str] = "vindr-cxr"
    image: ClassVar[type[ImageStage]] = DicomImageStage
    box_classes: ClassVar[BoxClasses] = BOX_CLASSES  # for the synthetic prompts (recipe vindr-prompts)
    config: str = "vindr"
    schema: str = "vindr"
    splits: tuple[str, ...] = SPLITS
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.options.root

    def check(self) -> None:
        if not self.root.is_dir():
            raise CxrdataError(f"VinDr-CXR root {self.root} does not exist or is not a folder")
        for split in self.splits:
            for rel, required in ((ANNOTATIONS[split], BOX_COLUMNS), (IMAGE_LABELS[split], ("image_id",))):
                if not (self.root / rel).is_file():
                    raise CxrdataError(f"VinDr-CXR file {self.root / rel} does not exist")
                require_columns(self.root / rel, required)
            if not (self.root / split).is_dir():
                raise CxrdataError(f"VinDr-CXR image folder {self.root / split} does not exist")

    def inputs(self) -> list[InputFile]:
        return [InputFile.of(self.root / rel, self.root) for rel in (*ANNOTATIONS.values(), *IMAGE_LABELS.values())]

    def describe(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"fuse": self.options.fuse, "iou": self.options.iou}
        if self.options.splits != SPLITS:
            shown["splits"] = list(self.options.splits)
        return shown

    def versions(self) -> dict[str, dict[str, str]]:
        found = folder_version(self.root)
        return {self.dataset: found} if found else {}

    def notices(self) -> list[str]:
        return []

    def record_keys(self) -> frozenset[str]:
        return frozenset({"image_id", "image_path", "_rows", "_labels"})

    def filters(self) -> list[SplitFilter]:
        return [SplitFilter(self.options.splits)] if self.options.splits != SPLITS else []

    def records(self) -> list[Record]:
        records: list[Record] = []
        for split in self.splits:
            by_image: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for key, files in (("rows", ANNOTATIONS), ("labels", IMAGE_LABELS)):
                for row in read_text_csv(self.root / files[split], rename=RENAME).iter_rows(named=True):
                    by_image.setdefault(row["image_id"] or "", {"rows": [], "labels": []})[key].append(row)
            for image_id in sorted(by_image):
                records.append({
                    "id": image_id, "image_id": image_id, "split": split, "_partition": image_id,
                    "image_path": f"{split}/{image_id}.dicom",
                    "_rows": by_image[image_id]["rows"], "_labels": by_image[image_id]["labels"],
                })
        return records

    def stages(self, image: ImageStage) -> list[Stage]:
        """The image first: the boxes are pixels of the DICOM grid, whose size only its header gives."""
        return [VindrRowStage(root=self.root), image, VindrBoxStage(fuse=self.options.fuse, iou=self.options.iou)]


ENTRY = DatasetEntry(
    name="vindr",
    summary="VinDr-CXR DICOMs with every reader's boxes and image-level labels (train and test).",
    options=VindrOptions,
    source_classes=(VindrSource,),
    doctor="cxrdata.sources.doctor.vindr:diagnose_vindr",
    doctor_summary="VinDr-CXR 1.0.0.",
    sample="cxrdata.sample.vindr:write_vindr_sample",
    sample_summary="VinDr-CXR 1.0.0: DICOMs (MONOCHROME1/2, RLE, JPEG 2000, VOI LUT...) and the annotation CSVs.",
)
