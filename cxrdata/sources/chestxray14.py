"""NIH ChestX-ray14 (public): 112,120 8-bit PNGs, 15 image labels each, and boxes on 880 test images.

One record per Data_Entry row (image). The release ships two label tables, ``Data_Entry_2017_v2020.csv``
(NIH's corrected one, read by default) and ``Data_Entry_2017.csv`` (the first, as Kaggle also has it);
``--data-entry`` picks one. Their bracketed headers (``OriginalImage[Width,Height]``,
``OriginalImagePixelSpacing[x,y]``, BBox_List's ``Bbox [x,y,w,h]``) split into several CSV columns and are
renamed here; the columns after a trailing comma are unnamed and must stay empty. Splits come from
``train_val_list.txt`` (-> ``train``) and ``test_list.txt`` (-> ``test``); the release has no validation
list and none is invented (the lists are patient-disjoint: carve a validation set by ``patient_id``).
Images are found under ``images/`` (NIH's archives) or ``images_NNN/images/`` (Kaggle's folders).
Quirks of each row: :mod:`cxrdata.sources.chestxray14_rows`; evidence: docs/formats/chestxray14.md.

Whole-input counts (the manifest's ``excluded``): a box row or list line naming an image no Data_Entry
row has (``box_row_without_data_entry``, ``list_entry_without_data_entry``); with ``splits`` or
``boxed_only``, the images left out (``image_in_other_split``, ``image_without_box``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from cxrdata.errors import CxrdataError
from cxrdata.imaging.stages import ImageStage, Png8ImageStage
from cxrdata.io.csvfiles import read_text_csv, require_columns
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile
from cxrdata.sources.chestxray14_rows import (
    BOX_CLASSES,
    BOX_COLUMNS,
    ENTRY_ALIASES,
    ENTRY_COLUMNS,
    ChestXray14BoxStage,
    ChestXray14RowStage,
)
from cxrdata.sources.versions import folder_version
from cxrdata.stage import Record, Stage
from cxrdata.targets.box_classes import BoxClasses

DATA_ENTRY_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")  # preferred first
BBOX_FILE = "BBox_List_2017.csv"
LIST_FILES = {"train": "train_val_list.txt", "test": "test_list.txt"}
SPLITS = ("train", "test")


def read_list(path: Path) -> list[str]:
    """A split list: one Image Index a line (the release's files end without a newline; CRLF tolerated)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CxrdataError(f"{path} cannot be read: {exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def image_folders(root: Path) -> list[Path]:
    """``images/`` (NIH's archives unpacked) and ``images_NNN/images/`` (Kaggle's folders) that exist."""
    flat = [root / "images"] if (root / "images").is_dir() else []
    return [*flat, *(p for p in sorted(root.glob("images_*/images")) if p.is_dir())]


def find_images(root: Path) -> dict[str, list[str]]:
    """Image Index -> the paths (relative to the root) of every PNG of that name in the image folders."""
    found: dict[str, list[str]] = {}
    for folder in image_folders(root):
        rel = folder.relative_to(root).as_posix()
        with os.scandir(folder) as entries:
            for item in entries:
                if item.name.endswith(".png"):
                    found.setdefault(item.name, []).append(f"{rel}/{item.name}")
    return {name: sorted(paths) for name, paths in found.items()}


def read_data_entry(path: Path) -> pl.DataFrame:
    """A Data_Entry table as text, its columns renamed (bracketed halves and ``Patient Sex`` included)."""
    return read_text_csv(path, rename={**{a: ENTRY_COLUMNS[b] for a, b in ENTRY_ALIASES.items()}, **ENTRY_COLUMNS})


def read_boxes(path: Path) -> pl.DataFrame:
    return read_text_csv(path, rename=BOX_COLUMNS)


@dataclass(frozen=True)
class ChestXray14Options:
    """``cxrdata build chestxray14``: the download, which label table, the splits kept, boxed images only."""

    root: Path = option(help="ChestX-ray14 root (holds Data_Entry_2017*.csv, BBox_List_2017.csv, train_val_list.txt, "
                             "test_list.txt and images/ or images_NNN/images/).")
    data_entry: Path | None = option(None, "The Data_Entry table to read; default: Data_Entry_2017_v2020.csv under "
                                           "--root, else Data_Entry_2017.csv.")
    boxed_only: bool = option(False, "Only the images BBox_List_2017.csv has boxes for (the others are counted as "
                                     "excluded): what --recipe lofi-regions wants.")
    splits: tuple[str, ...] = option(SPLITS, "Splits kept (train, test); the others are counted as excluded.",
                                     cli=False)

    def __post_init__(self) -> None:
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown or not self.splits:
            raise ValueError(f"ChestX-ray14 splits are {', '.join(SPLITS)}; got {', '.join(self.splits) or 'none'}")
        object.__setattr__(self, "splits", tuple(s for s in SPLITS if s in self.splits))


@dataclass(frozen=True)
class SplitFilter:
    """Images of a split not kept become no record (``image_in_other_split``); an image in no list is kept,
    so that its row stage rejects it (``split_missing``) rather than hiding it."""

    splits: tuple[str, ...]
    name: str = "splits"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        kept = [r for r in records if r["split"] is None or r["split"] in self.splits]
        return kept, Counter({"image_in_other_split": len(records) - len(kept)} if len(kept) < len(records) else {})


@dataclass(frozen=True)
class BoxedFilter:
    """Images without a box row become no record (counted ``image_without_box``)."""

    name: str = "boxed-only"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        kept = [r for r in records if r["_boxes"]]
        return kept, Counter({"image_without_box": len(records) - len(kept)} if len(kept) < len(records) else {})


@dataclass
class ChestXray14Source:
    """ChestX-ray14 images (8-bit PNG) with their labels, patient data and boxes."""

    options: ChestXray14Options
    dataset: ClassVar[str] = "chestx-ray14"
    image: ClassVar[type[ImageStage]] = Png8ImageStage
    box_classes: ClassVar[BoxClasses] = BOX_CLASSES  # for the synthetic prompts (recipe vindr-prompts)
    config: str = "chestxray14"
    schema: str = "chestxray14"
    splits: tuple[str, ...] = SPLITS
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.options.root

    @property
    def data_entry(self) -> Path:
        if self.options.data_entry is not None:
            return self.options.data_entry
        present = [self.root / n for n in DATA_ENTRY_FILES if (self.root / n).is_file()]
        return present[0] if present else self.root / DATA_ENTRY_FILES[0]

    def check(self) -> None:
        if not self.root.is_dir():
            raise CxrdataError(f"ChestX-ray14 root {self.root} does not exist or is not a folder")
        if self.options.data_entry is None and not self.data_entry.is_file():
            raise CxrdataError(f"ChestX-ray14 label table not found: expected {' or '.join(DATA_ENTRY_FILES)} in "
                               f"{self.root}")
        if not self.data_entry.is_file():
            raise CxrdataError(f"ChestX-ray14 label table {self.data_entry} does not exist")
        found = [ENTRY_ALIASES.get(c, c) for c in require_columns(self.data_entry, [])]
        missing = [c for c in ENTRY_COLUMNS if c not in found]
        if missing:
            raise CxrdataError(f"{self.data_entry.name}: missing column(s) {', '.join(missing)} (found: "
                               f"{', '.join(found)}; a quoted 'OriginalImage[Width,Height]' is one column, not two)")
        for rel in (BBOX_FILE, *LIST_FILES.values()):
            if not (self.root / rel).is_file():
                raise CxrdataError(f"ChestX-ray14 file {self.root / rel} does not exist")
        require_columns(self.root / BBOX_FILE, list(BOX_COLUMNS))
        if not image_folders(self.root):
            raise CxrdataError(f"no ChestX-ray14 image folder under {self.root}: expected images/ or "
                               "images_001/images/ ... images_012/images/")

    def inputs(self) -> list[InputFile]:
        files = [self.data_entry, self.root / BBOX_FILE, *(self.root / rel for rel in LIST_FILES.values())]
        return [InputFile(str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p), p.stat().st_size)
                for p in files]

    def describe(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"data_entry": self.data_entry.name, "boxed_only": self.options.boxed_only}
        if self.options.splits != SPLITS:
            shown["splits"] = list(self.options.splits)
        return shown

    def versions(self) -> dict[str, dict[str, str]]:
        name = self.data_entry.name
        if name in DATA_ENTRY_FILES:
            version = "v2020" if "v2020" in name else "2017"
            return {self.dataset: {"version": version, "evidence": f"labels read from {name}"}}
        found = folder_version(self.root)
        return {self.dataset: found} if found else {}

    def notices(self) -> list[str]:
        others = [n for n in DATA_ENTRY_FILES if (self.root / n).is_file() and self.root / n != self.data_entry]
        if not others:
            return []
        return [f"labels read from {self.data_entry.name}; {', '.join(others)} is also there and was not read "
                "(--data-entry picks the table)"]

    def record_keys(self) -> frozenset[str]:
        return frozenset({"image_index", "image_path", "_entry_rows", "_lists", "_boxes", "_image_paths"})

    def filters(self) -> list[Any]:
        chosen: list[Any] = [SplitFilter(self.options.splits)] if self.options.splits != SPLITS else []
        return [*chosen, BoxedFilter()] if self.options.boxed_only else chosen

    def records(self) -> list[Record]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in read_data_entry(self.data_entry).iter_rows(named=True):
            rows.setdefault(row["image_index"] or "", []).append(row)
        boxes: dict[str, list[dict[str, Any]]] = {}
        for row in read_boxes(self.root / BBOX_FILE).iter_rows(named=True):
            boxes.setdefault(row["image_index"] or "", []).append(row)
        lists = {split: Counter(read_list(self.root / rel)) for split, rel in LIST_FILES.items()}
        files = find_images(self.root)
        excluded = Counter({"box_row_without_data_entry": sum(len(v) for k, v in boxes.items() if k not in rows),
                            "list_entry_without_data_entry": sum(n for c in lists.values()
                                                                 for k, n in c.items() if k not in rows)})
        self.excluded = {k: v for k, v in excluded.items() if v}
        records = []
        for name in sorted(rows):
            listed = [split for split in SPLITS if lists[split][name]]
            paths = files.get(name, [])
            records.append({
                "id": name, "image_index": name, "split": listed[0] if len(listed) == 1 else None,
                "_partition": name.split("_", 1)[0], "image_path": paths[0] if paths else None,
                "_entry_rows": rows[name], "_boxes": boxes.get(name, []), "_image_paths": paths,
                "_lists": {split: lists[split][name] for split in SPLITS},
            })
        return records

    def stages(self, image: ImageStage) -> list[Stage]:
        """The image before the boxes: they note a PNG that is not the release's 1024 x 1024."""
        return [ChestXray14RowStage(root=self.root), image, ChestXray14BoxStage()]


ENTRY = DatasetEntry(
    name="chestxray14",
    summary="NIH ChestX-ray14 8-bit PNGs with their 15 image labels, patient data and the boxes of 880 test images.",
    options=ChestXray14Options,
    source_classes=(ChestXray14Source,),
    doctor="cxrdata.sources.doctor.chestxray14:diagnose_chestxray14",
    doctor_summary="NIH ChestX-ray14 (Data_Entry_2017[_v2020].csv, BBox_List_2017.csv, split lists, PNG folders).",
    sample="cxrdata.sample.chestxray14:write_chestxray14_sample",
    sample_options="cxrdata.sample.chestxray14:SampleOptions",
    sample_summary="NIH ChestX-ray14: Data_Entry (2017 or v2020), BBox_List_2017.csv, split lists, 1024 px PNGs.",
)
