"""Chest ImaGenome gold anatomical boxes as canonical boxes, without MIMIC-CXR (the Gaussian LUT's source).

Reads ``gold_dataset/gold_bbox_coordinate_annotations_1000images.csv`` (columns by name: the file
orders them ``original_x1, original_x2, original_y1, original_y2``) and
``gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv`` (``image_id,top,bottom,left,right,ratio``).
Only the ``original_*`` pixel coordinates are used, never the 224-grid ``x1..y2``.

The scaling file maps original pixels to the 224 letterbox, ``x224 = x * ratio + left`` and
``y224 = y * ratio + top``, so it also gives the original image size (rounded to whole pixels):

    width = (224 - left - right) / ratio,   height = (224 - top - bottom) / ratio

Image ids carry a ``.dcm`` suffix in both files; it is stripped. :func:`read_gold_rows` is the one
reading of the box file: this module's LUT boxes and the ``imagenome-gold`` build
(:mod:`cxrdata.sources.imagenome`) both take their rows from it. Rows that cannot become a box are
not dropped silently: they are counted per reason in :attr:`GoldBoxes.problems`. A row repeated
verbatim counts once (``duplicate_row``); two different rows for one (image, region) are a conflict
and neither is used (``conflicting_rows``, both counted): a LUT must not weigh a box twice.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cxrdata.anatomy.gaussian import LUT_SIGMA_DIVISOR
from cxrdata.anatomy.lut import DEFAULT_GRID, GaussianLUT, build_lut, imagenome_regions
from cxrdata.boxes import Box, check_box, from_xyxy_pixels
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.io.csvfiles import read_text_csv, require_columns
from cxrdata.sources.imagenome_layout import GOLD_BOXES, GOLD_SCALING, ROOT_NAME, dicom_id_of

GoldRow = dict[str, str | None]  # one row of the gold box file, every column as text (empty cells None)
BOX_COLUMNS = ("image_id", "bbox_name", "original_x1", "original_y1", "original_x2", "original_y2")
SCALING_COLUMNS = ("image_id", "top", "bottom", "left", "right", "ratio")
LETTERBOX_SIDE = 224


@dataclass(frozen=True)
class GoldBox:
    """One gold box: ``box`` is canonical (normalised to the original size), not yet checked or clipped."""

    dicom_id: str
    bbox_name: str
    box: Box


@dataclass
class GoldBoxes:
    """Every convertible gold row, the original image sizes, and the rows that could not be converted."""

    boxes: list[GoldBox]
    sizes: dict[str, tuple[int, int]]  # dicom_id -> (width, height) from the scaling file
    rows: int
    problems: Counter[str] = field(default_factory=Counter)

    def pairs(self) -> list[tuple[str, Box]]:
        """``(bbox_name, canonical box)`` pairs, the input of :func:`cxrdata.anatomy.lut.build_lut`."""
        return [(b.bbox_name, b.box) for b in self.boxes]


def gold_dir(root: Path | str) -> Path:
    """The folder holding ``gold_dataset/``: ``root`` itself or ``root/chest-imagenome-dataset-1.0.0``."""
    root = Path(root)
    nested = root / ROOT_NAME
    return nested if not (root / "gold_dataset").is_dir() and (nested / "gold_dataset").is_dir() else root


def read_gold_rows(path: Path) -> list[tuple[str, GoldRow]]:
    """Every row of the gold box file in file order, with its dicom_id (:func:`dicom_id_of` its image_id).

    The caller checks the file and its columns first (each with its own message)."""
    return [(dicom_id_of(row["image_id"]), row) for row in read_text_csv(path).iter_rows(named=True)]


def _number(value: str | None) -> float:
    number = float(value)  # type: ignore[arg-type]  # None -> TypeError, handled by callers
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def original_size(top: float, bottom: float, left: float, right: float, ratio: float) -> tuple[int, int]:
    """``(width, height)`` of the original image from one row of the scaling file."""
    if ratio <= 0:
        raise ValueError(f"ratio {ratio} is not positive")
    width = round((LETTERBOX_SIDE - left - right) / ratio)
    height = round((LETTERBOX_SIDE - top - bottom) / ratio)
    if width <= 0 or height <= 0:
        raise ValueError(f"padding {top, bottom, left, right} leaves no image")
    return width, height


def read_scaling(root: Path | str) -> tuple[dict[str, tuple[int, int]], Counter[str]]:
    """dicom_id -> original ``(width, height)`` from the scaling file, and the rows that failed."""
    path = gold_dir(root) / GOLD_SCALING
    if not path.is_file():
        raise CxrdataError(f"Chest ImaGenome scaling file {path} does not exist")
    require_columns(path, SCALING_COLUMNS)
    sizes: dict[str, tuple[int, int]] = {}
    problems: Counter[str] = Counter()
    for row in read_text_csv(path).select(SCALING_COLUMNS).iter_rows(named=True):
        dicom_id = dicom_id_of(row["image_id"])
        try:
            size = original_size(*(_number(row[k]) for k in SCALING_COLUMNS[1:]))
        except (TypeError, ValueError):
            problems["scaling_row_malformed"] += 1
            continue
        if dicom_id in sizes and sizes[dicom_id] != size:
            raise CxrdataError(f"{path.name}: image {dicom_id} has two different scaling rows")
        sizes[dicom_id] = size
    return sizes, problems


def read_gold_boxes(root: Path | str) -> GoldBoxes:
    """All gold boxes of a Chest ImaGenome download as canonical boxes (see the module docstring)."""
    path = gold_dir(root) / GOLD_BOXES
    if not path.is_file():
        raise CxrdataError(f"Chest ImaGenome gold box file {path} does not exist "
                           f"(give the folder holding gold_dataset/ or {ROOT_NAME}/)")
    require_columns(path, BOX_COLUMNS)
    sizes, problems = read_scaling(root)
    boxes: list[GoldBox] = []
    rows = read_gold_rows(path)
    for dicom_id, row in _distinct_rows(rows, problems):
        name = (row["bbox_name"] or "").strip()
        if not name:
            problems["bbox_name_missing"] += 1
            continue
        if dicom_id not in sizes:
            problems["no_scaling_row"] += 1
            continue
        try:
            x1, y1, x2, y2 = (_number(row[k]) for k in BOX_COLUMNS[2:])
        except (TypeError, ValueError):
            problems["coordinate_malformed"] += 1
            continue
        boxes.append(GoldBox(dicom_id, name, from_xyxy_pixels(x1, y1, x2, y2, *sizes[dicom_id])))
    return GoldBoxes(boxes, sizes, len(rows), problems)


def _distinct_rows(rows: Iterable[tuple[str, GoldRow]], problems: Counter[str]) -> list[tuple[str, GoldRow]]:
    """Rows without verbatim repeats and without (image, region) pairs given twice differently."""
    by_pair: defaultdict[tuple[str, str], list[tuple[str, GoldRow]]] = defaultdict(list)
    seen: set[tuple[tuple[str, str | None], ...]] = set()
    for dicom_id, row in rows:
        key = tuple(row.items())
        if key in seen:
            problems["duplicate_row"] += 1
            continue
        seen.add(key)
        by_pair[(dicom_id, (row["bbox_name"] or "").strip())].append((dicom_id, row))
    kept = []
    for group in by_pair.values():
        if len(group) > 1:
            problems["conflicting_rows"] += len(group)
        else:
            kept.extend(group)
    return kept


@dataclass
class GoldLut:
    """A LUT built from gold boxes, with what went into it."""

    lut: GaussianLUT
    gold: GoldBoxes
    used_regions: dict[str, int]  # ImaGenome region -> usable boxes behind its statistics
    box_problems: Counter[str]  # check_box reasons of boxes of used regions that were skipped


def build_gold_lut(root: Path | str, grid: int = DEFAULT_GRID, sigma_divisor: float = LUT_SIGMA_DIVISOR) -> GoldLut:
    """The Gaussian LUT of a Chest ImaGenome download (SPEC "Gaussian lookup table")."""
    if grid <= 0:
        raise CxrdataError(f"--grid must be a positive integer, not {grid}")
    if not (math.isfinite(sigma_divisor) and sigma_divisor > 0):
        raise CxrdataError(f"--sigma-divisor must be a positive number, not {sigma_divisor}")
    gold = read_gold_boxes(root)
    wanted = set(imagenome_regions())
    used: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for item in gold.boxes:
        if item.bbox_name not in wanted:
            continue
        try:
            check_box(item.box)
        except Rejected as exc:
            problems[exc.reason] += 1
        else:
            used[item.bbox_name] += 1
    lut = build_lut(gold.pairs(), grid=grid, sigma_divisor=sigma_divisor)
    return GoldLut(lut, gold, {name: used[name] for name in imagenome_regions()}, problems)
