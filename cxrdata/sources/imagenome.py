"""Chest ImaGenome 1.0.0 on MIMIC-CXR-JPG images (FORMATS.md section 3): two output configs.

* ``imagenome-gold`` (:class:`ImagenomeGoldSource`): the manually corrected anatomical boxes of
  the gold images, one row per image, all in split ``test`` (the gold patients are held out), and
  their report sentences with per-region attributes (``sentence_regions``, from the gold attributes
  TSV: :mod:`cxrdata.sources.imagenome_attributes`).
* ``imagenome-silver`` (:class:`ImagenomeSilverSource`): one row per scene graph listed in the
  official splits: its anatomy boxes and one region per (bbox_name, report phrase).

Quirks handled here: split CSVs start with an unnamed index column and give MIMIC *DICOM* paths
(``.dcm`` -> ``.jpg`` under ``mimic_root``); gold image ids carry ``.dcm``; gold columns come in the
order ``original_x1, original_x2, original_y1, original_y2`` (read by name); boxes come from the
``original_*`` pixels only, never from the 224 letterbox grid, normalised by the original size
(MIMIC metadata ``Columns``/``Rows`` when present, else the file's); phrases contain newlines; gold
images listed in ``images_to_avoid.csv`` are excluded from silver train/validation as the dataset
asks (counted as excluded, not rejected). Scene graphs are read from ``silver_dataset/scene_graph/``
or straight from ``silver_dataset/scene_graph.zip``; a missing one rejects its row with
``scene_graph_missing``, one that cannot be read (a folder in its place, an I/O error, a damaged zip
member) with ``scene_graph_unreadable`` and one that does not parse with ``scene_graph_invalid``.

Input checks (docs/formats/chest-imagenome.md): a dicom_id that would name a path outside its folder
is rejected ``unsafe_id`` before any file is opened; a gold box row repeated verbatim is kept once
(note ``gold_box_row_duplicate``) and two different rows for one (image, region) reject that box
(``rejected_regions`` reason ``box_conflict``); a null or non-text phrase is skipped and counted
(``phrase_missing``), never written as the text "None"; when the MIMIC-CXR-JPG metadata gives no
original size (no metadata file, no ``Rows``/``Columns`` columns, no row for the image) the JPEG's
own size is used and counted (``original_size_from_image_file``).

The jobs live in their own modules: the download's file names and split listings
(:mod:`~cxrdata.sources.imagenome_layout`), the one reading of the gold box CSV
(:mod:`~cxrdata.sources.imagenome_gold`, shared with the Gaussian LUT), the per-image record
(:mod:`~cxrdata.sources.imagenome_records`) and the scene graphs
(:mod:`~cxrdata.sources.imagenome_scene_graph`); this module assembles them into the two sources.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.errors import CxrdataError
from cxrdata.imaging.stages import ImageStage, JpegImageStage
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile, canonical_split
from cxrdata.sources.imagenome_attributes import (
    GOLD_ATTRIBUTES,
    GoldAttributeStage,
    check_attributes_file,
    read_attribute_rows,
)
from cxrdata.sources.imagenome_gold import read_gold_rows
from cxrdata.sources.imagenome_layout import (
    AVOID_FILE,
    GOLD_BOXES,
    GOLD_COLUMNS,
    SCENE_GRAPH_DIR,
    SCENE_GRAPH_ZIP,
    SPLIT_COLUMNS,
    SPLIT_DIR,
    SPLIT_FILES,
    dataset_dir,
    read_listing,
    require_file_columns,
)
from cxrdata.sources.imagenome_records import GoldBoxStage, ImagenomeRowStage, original_sizes
from cxrdata.sources.imagenome_scene_graph import SceneGraphStage, SilverRegionStage
from cxrdata.sources.versions import folder_version, mimic_version
from cxrdata.stage import Record, Stage

GOLD_SPLIT = "test"
EXCLUDED_GOLD = "gold_image_in_images_to_avoid"


@dataclass(frozen=True)
class ImagenomeOptions:
    """``cxrdata build imagenome``: the Chest ImaGenome download and the MIMIC-CXR-JPG images it lists."""

    root: Path = option(help="Chest ImaGenome root (holds gold_dataset/ and silver_dataset/), or the folder above it.")
    mimic_root: Path = option(help="MIMIC-CXR-JPG root holding the images.")


@dataclass(frozen=True)
class GoldImagesFilter:
    """Gold images listed in images_to_avoid.csv stay out of silver train/validation, as the dataset asks
    (counted ``gold_image_in_images_to_avoid``); a gold image listed in test stays."""

    avoid: frozenset[str]
    name: str = "gold-images"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        kept = [r for r in records if r["split"] == "test" or r["id"] not in self.avoid]
        return kept, Counter({EXCLUDED_GOLD: len(records) - len(kept)} if len(kept) < len(records) else {})


@dataclass(frozen=True)
class FirstListingFilter:
    """An image listed in several split files keeps its first listing (train, valid, test order; counted
    ``listed_twice``); the records come out in id order."""

    name: str = "first-listing"

    def apply(self, records: list[Record]) -> tuple[list[Record], Counter[str]]:
        first: dict[str, Record] = {}
        for record in records:
            first.setdefault(record["id"], record)
        twice = len(records) - len(first)
        return sorted(first.values(), key=lambda r: r["id"]), Counter({"listed_twice": twice} if twice else {})


@dataclass
class _ImagenomeBase:
    options: ImagenomeOptions
    dataset: ClassVar[str] = "chest-imagenome"
    image: ClassVar[type[ImageStage]] = JpegImageStage
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return dataset_dir(self.options.root)

    @property
    def mimic_root(self) -> Path:
        return self.options.mimic_root

    def _check_common(self) -> None:
        if not self.root.is_dir():
            raise CxrdataError(f"Chest ImaGenome root {self.root} does not exist or is not a folder")
        if not (self.mimic_root / "files").is_dir():
            raise CxrdataError(f"MIMIC-CXR-JPG images folder {self.mimic_root / 'files'} does not exist "
                               "(Chest ImaGenome ships no images; pass --mimic-root)")
        for name in (*SPLIT_FILES, AVOID_FILE):
            require_file_columns(self.root / SPLIT_DIR / name, SPLIT_COLUMNS)

    def describe(self) -> dict[str, Any]:
        return {"mimic_root": str(self.mimic_root)}

    def versions(self) -> dict[str, dict[str, str]]:
        found = {self.dataset: folder_version(self.root), "mimic-cxr-jpg": mimic_version(self.mimic_root)}
        return {name: entry for name, entry in found.items() if entry}

    def notices(self) -> list[str]:
        return []

    def _split_inputs(self) -> list[InputFile]:
        return [InputFile.of(self.root / SPLIT_DIR / n, self.root) for n in (*SPLIT_FILES, AVOID_FILE)]

    def _record(self, dicom_id: str, split: str | None, listed: dict[str, Any] | None,
                sizes: dict[str, tuple[int, int]]) -> Record:
        return {"id": dicom_id, "split": split, "_listed": listed, "_original_size": sizes.get(dicom_id),
                "_partition": (listed or {}).get("subject_id") or dicom_id}


@dataclass
class ImagenomeGoldSource(_ImagenomeBase):
    """Gold anatomical boxes of Chest ImaGenome, one row per gold image (split ``test``)."""

    config: str = "imagenome-gold"
    schema: str = "imagenome-gold"
    splits: tuple[str, ...] = (GOLD_SPLIT,)

    def check(self) -> None:
        self._check_common()
        require_file_columns(self.root / GOLD_BOXES, GOLD_COLUMNS)
        check_attributes_file(self.root / GOLD_ATTRIBUTES)

    def inputs(self) -> list[InputFile]:
        return [InputFile.of(self.root / GOLD_BOXES, self.root), InputFile.of(self.root / GOLD_ATTRIBUTES, self.root),
                *self._split_inputs()]

    def record_keys(self) -> frozenset[str]:
        return frozenset({"_listed", "_original_size", "_rows", "_attribute_rows"})

    def filters(self) -> list[Any]:
        return []

    def records(self) -> list[Record]:
        """One record per image of the gold box file or of the gold attributes file."""
        boxes: dict[str, list[dict[str, Any]]] = {}
        for dicom_id, row in read_gold_rows(self.root / GOLD_BOXES):
            boxes.setdefault(dicom_id, []).append(row)
        attributes = read_attribute_rows(self.root / GOLD_ATTRIBUTES)
        listed: dict[str, dict[str, Any]] = {}
        for name in (AVOID_FILE, *SPLIT_FILES):  # images_to_avoid.csv lists the gold patients' images
            for row in read_listing(self.root, name).iter_rows(named=True):
                listed.setdefault(row["dicom_id"], row)
        ids = sorted(set(boxes) | set(attributes))
        sizes = original_sizes(self.mimic_root, set(ids))
        records = []
        for dicom_id in ids:
            record = self._record(dicom_id, GOLD_SPLIT, listed.get(dicom_id), sizes)
            record["_rows"], record["_attribute_rows"] = boxes.get(dicom_id, []), attributes.get(dicom_id, [])
            records.append(record)
        return records

    def stages(self, image: ImageStage) -> list[Stage]:
        return [ImagenomeRowStage(mimic_root=self.mimic_root), image, GoldBoxStage(), GoldAttributeStage()]


@dataclass
class ImagenomeSilverSource(_ImagenomeBase):
    """Silver scene graphs of Chest ImaGenome in its official splits, gold images kept out of train/validation."""

    config: str = "imagenome-silver"
    schema: str = "imagenome-silver"
    splits: tuple[str, ...] = ("train", "validation", "test")

    @property
    def scene_graphs(self) -> Path:
        folder, archive = self.root / SCENE_GRAPH_DIR, self.root / SCENE_GRAPH_ZIP
        return folder if folder.is_dir() or not archive.is_file() else archive

    def check(self) -> None:
        self._check_common()
        if not self.scene_graphs.exists():
            raise CxrdataError(f"Chest ImaGenome scene graphs not found: neither {SCENE_GRAPH_DIR}/ nor "
                               f"{SCENE_GRAPH_ZIP} in {self.root}")
        if self.scene_graphs.suffix == ".zip" and not zipfile.is_zipfile(self.scene_graphs):
            raise CxrdataError(f"{self.scene_graphs} is not a zip archive (truncated download?)")

    def inputs(self) -> list[InputFile]:
        archive = [InputFile.of(self.scene_graphs, self.root)] if self.scene_graphs.is_file() else []
        return [*self._split_inputs(), *archive]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scene_graphs": self.scene_graphs.name}

    def record_keys(self) -> frozenset[str]:
        return frozenset({"_listed", "_original_size"})

    def filters(self) -> list[Any]:
        return [GoldImagesFilter(frozenset(read_listing(self.root, AVOID_FILE)["dicom_id"])), FirstListingFilter()]

    def records(self) -> list[Record]:
        """Every listing row of the official splits, in file order (the filters keep one per image)."""
        rows = [(row["dicom_id"] or "", split, row) for name, split in SPLIT_FILES.items()
                for row in read_listing(self.root, name).iter_rows(named=True)]
        sizes = original_sizes(self.mimic_root, {dicom_id for dicom_id, _, _ in rows})
        return [self._record(i, canonical_split(split), row, sizes) for i, split, row in rows]

    def stages(self, image: ImageStage) -> list[Stage]:
        return [ImagenomeRowStage(mimic_root=self.mimic_root), SceneGraphStage(location=self.scene_graphs), image,
                SilverRegionStage()]


ENTRY = DatasetEntry(
    name="imagenome",
    summary="Chest ImaGenome in two configs: imagenome-gold (gold boxes) and imagenome-silver (scene graphs).",
    options=ImagenomeOptions,
    source_classes=(ImagenomeGoldSource, ImagenomeSilverSource),
    doctor="cxrdata.sources.doctor.imagenome:diagnose_imagenome",
    doctor_summary="Chest ImaGenome 1.0.0 (+ the MIMIC-CXR-JPG images it lists).",
    sample="cxrdata.sample.imagenome:write_imagenome_sample",
    sample_paths={"root": "", "mimic_root": "mimic-cxr-jpg"},
    sample_summary="Chest ImaGenome 1.0.0 (gold CSVs, silver scene graphs and splits) on a MIMIC-CXR-JPG sample.",
)
