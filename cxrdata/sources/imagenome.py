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
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import polars as pl

from cxrdata.boxes import from_xyxy_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.stages import ImageStage, JpegImageStage
from cxrdata.io.csvfiles import find_file, header, read_text_csv, require_columns
from cxrdata.recipe import option
from cxrdata.sources.base import DatasetEntry, InputFile, canonical_split
from cxrdata.sources.imagenome_attributes import (
    GOLD_ATTRIBUTES,
    GoldAttributeStage,
    check_attributes_file,
    read_attribute_rows,
)
from cxrdata.sources.input_checks import check_file_id, unique_rows
from cxrdata.sources.mimic import METADATA
from cxrdata.sources.regions import Regions, note
from cxrdata.sources.versions import folder_version, mimic_version
from cxrdata.stage import Record, RecordStage, Stage

ROOT_NAME = "chest-imagenome-dataset-1.0.0"
GOLD_BOXES = "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv"
GOLD_COLUMNS = ("image_id", "bbox_name", "original_x1", "original_y1", "original_x2", "original_y2", "annotator")
SPLIT_DIR = "silver_dataset/splits"
SPLIT_FILES = {"train.csv": "train", "valid.csv": "validation", "test.csv": "test"}
AVOID_FILE = "images_to_avoid.csv"
SPLIT_COLUMNS = ("subject_id", "study_id", "dicom_id", "path", "ViewPosition")
SCENE_GRAPH_DIR = "silver_dataset/scene_graph"
SCENE_GRAPH_ZIP = "silver_dataset/scene_graph.zip"
SCENE_GRAPH_SUFFIX = "_SceneGraph.json"
ORIGINAL = ("original_x1", "original_y1", "original_x2", "original_y2")
CUES = ("comparison_cues", "temporal_cues", "severity_cues", "texture_cues")  # parallel to phrases, like attributes
DICOM_PATH = re.compile(r"^files/p\d{2}/p(\d+)/s(\d+)/([^/]+)\.(dcm|jpg)$")
GOLD_SPLIT = "test"
EXCLUDED_GOLD = "gold_image_in_images_to_avoid"


def dataset_dir(root: Path) -> Path:
    """The folder holding ``gold_dataset/`` and ``silver_dataset/``: ``root`` or ``root/<ROOT_NAME>``."""
    nested = root / ROOT_NAME
    return nested if not (root / "silver_dataset").is_dir() and nested.is_dir() else root


def _columns(path: Path, required: tuple[str, ...]) -> None:
    """Refuse a missing or empty file or one without the required columns, in one line."""
    if not path.is_file():
        raise CxrdataError(f"Chest ImaGenome file {path} does not exist")
    require_columns(path, required)


def _listing(root: Path, name: str) -> pl.DataFrame:
    return read_text_csv(root / SPLIT_DIR / name).select(SPLIT_COLUMNS)


SIZE_COLUMNS = ("dicom_id", "Columns", "Rows")


def _original_sizes(mimic_root: Path, dicom_ids: set[str]) -> dict[str, tuple[int, int]]:
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


@dataclass
class SceneGraphStage(RecordStage):
    """Loads the record's ``<dicom_id>_SceneGraph.json`` from the folder or the zip."""

    name: ClassVar[str] = "imagenome-scene-graph"
    version: ClassVar[str] = "2"
    gives: ClassVar[frozenset[str]] = frozenset({"_graph"})
    location: Path = Path()
    _zip: zipfile.ZipFile | None = field(default=None, init=False, repr=False)
    _members: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def setup(self) -> None:
        if self.location.suffix == ".zip" and self._zip is None:
            self._zip = zipfile.ZipFile(self.location)
            self._members = {PurePosixPath(n).name: n for n in self._zip.namelist() if n.endswith(SCENE_GRAPH_SUFFIX)}

    def _read(self, dicom_id: str) -> bytes:
        name = f"{dicom_id}{SCENE_GRAPH_SUFFIX}"
        if self.location.suffix != ".zip":
            try:
                return (self.location / name).read_bytes()
            except FileNotFoundError:
                raise Rejected("scene_graph_missing", f"{name} is not in {self.location}") from None
            except OSError as exc:  # a folder in its place, no permission, a link loop, an I/O error
                raise Rejected("scene_graph_unreadable", f"{name}: {exc.strerror or exc}") from None
        self.setup()
        assert self._zip is not None
        if name not in self._members:
            raise Rejected("scene_graph_missing", f"{name} is not in {self.location.name}")
        try:
            return self._zip.read(self._members[name])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            raise Rejected("scene_graph_unreadable",
                           f"{self._members[name]} in {self.location.name}: {type(exc).__name__}: {exc}") from None

    def process(self, record: Record) -> Record:
        data = self._read(record["id"])
        try:
            graph = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected("scene_graph_invalid", f"not valid JSON: {exc}") from None
        if not isinstance(graph, dict) or not isinstance(graph.get("objects"), list) \
                or not isinstance(graph.get("attributes", []), list):
            raise Rejected("scene_graph_invalid", "not an object with 'objects' and 'attributes' lists")
        if str(graph.get("image_id", record["id"])).removesuffix(".dcm") != record["id"]:
            note(record, "scene_graph_id_mismatch")
        record["_graph"] = graph
        return record


def _at(values: Any, k: int) -> list[str]:
    """Item ``k`` of a per-phrase list of lists (missing or malformed: empty)."""
    item = values[k] if isinstance(values, list) and k < len(values) else []
    return [str(v) for v in item] if isinstance(item, list) else []


def _sentence(phrase_ids: Any, k: int) -> int | None:
    """The sentence index of ``"<study_id>|<index>"``, or None."""
    try:
        return int(str(phrase_ids[k]).rsplit("|", 1)[1])
    except (TypeError, IndexError, ValueError, KeyError):
        return None


@dataclass
class SilverRegionStage(RecordStage):
    """Scene-graph objects -> anatomy boxes; attributes -> one region per (bbox_name, phrase)."""

    name: ClassVar[str] = "imagenome-silver-regions"
    version: ClassVar[str] = "2"
    needs: ClassVar[frozenset[str]] = frozenset({"_graph", "original_width", "original_height"})
    drops: ClassVar[frozenset[str]] = frozenset({"_graph"})
    gives: ClassVar[frozenset[str]] = frozenset({"anatomy", "regions", "rejected_regions"})

    def process(self, record: Record) -> Record:
        graph = record.pop("_graph")
        width, height = record["original_width"], record["original_height"]
        anatomy = Regions(record, "imagenome-silver")
        boxes: dict[str, list[float] | None] = {}
        for obj in graph["objects"]:
            name = str(obj.get("bbox_name") or "") if isinstance(obj, dict) else ""
            if not name or name in boxes:
                note(record, "object_invalid" if not name else "object_duplicate")
                continue
            boxes[name] = anatomy.box(
                lambda obj=obj: from_xyxy_pixels(*(float(obj[k]) for k in ORIGINAL), width, height), name)
            if boxes[name] is not None:
                anatomy.add(boxes[name], name, name)
        regions: dict[tuple[str, str], Record] = {}
        for entry in graph.get("attributes", []):
            name = str(entry.get("bbox_name") or "") if isinstance(entry, dict) else ""
            phrases = entry.get("phrases") if name else None
            if not isinstance(phrases, list):
                note(record, "attribute_invalid")
                continue
            for k, raw in enumerate(phrases):
                if not isinstance(raw, str) or not raw.strip():
                    note(record, "phrase_missing")  # null or not text: never the string "None"
                    continue
                phrase = " ".join(raw.split())
                attributes = [a for key in ("attributes", *CUES) for a in _at(entry.get(key), k)]
                found = regions.get((name, phrase))
                if found is None:
                    regions[(name, phrase)] = found = {
                        "box": boxes.get(name), "phrase": phrase, "label": name, "reader": None,
                        "source": "imagenome-silver", "sentence": _sentence(entry.get("phrase_IDs"), k),
                        "attributes": []}
                found["attributes"].extend(a for a in attributes if a not in found["attributes"])
        record.update(anatomy=anatomy.kept, regions=list(regions.values()), rejected_regions=anatomy.rejected)
        return record


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
            _columns(self.root / SPLIT_DIR / name, SPLIT_COLUMNS)

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
        _columns(self.root / GOLD_BOXES, GOLD_COLUMNS)
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
        gold = read_text_csv(self.root / GOLD_BOXES).with_columns(
            pl.col("image_id").fill_null("").str.strip_chars().str.strip_suffix(".dcm").alias("dicom_id"))
        boxes = {str(d): group.drop("dicom_id").to_dicts()
                 for (d,), group in gold.group_by(["dicom_id"], maintain_order=True)}
        attributes = read_attribute_rows(self.root / GOLD_ATTRIBUTES)
        listed: dict[str, dict[str, Any]] = {}
        for name in (AVOID_FILE, *SPLIT_FILES):  # images_to_avoid.csv lists the gold patients' images
            for row in _listing(self.root, name).iter_rows(named=True):
                listed.setdefault(row["dicom_id"], row)
        ids = sorted(set(boxes) | set(attributes))
        sizes = _original_sizes(self.mimic_root, set(ids))
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
        return [GoldImagesFilter(frozenset(_listing(self.root, AVOID_FILE)["dicom_id"])), FirstListingFilter()]

    def records(self) -> list[Record]:
        """Every listing row of the official splits, in file order (the filters keep one per image)."""
        rows = [(row["dicom_id"] or "", split, row) for name, split in SPLIT_FILES.items()
                for row in _listing(self.root, name).iter_rows(named=True)]
        sizes = _original_sizes(self.mimic_root, {dicom_id for dicom_id, _, _ in rows})
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
