"""Where the files of a Chest ImaGenome 1.0.0 download are, and the reading of its split listings.

One place for the download's file names (the reader, its doctor and the gold-box parser all use them)
and for the two readings every config shares: a file's required columns, refused in one line, and a
split file's rows (``silver_dataset/splits/*.csv``: an unnamed index column first, MIMIC *DICOM* paths).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cxrdata.errors import CxrdataError
from cxrdata.io.csvfiles import read_text_csv, require_columns

ROOT_NAME = "chest-imagenome-dataset-1.0.0"
GOLD_BOXES = "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv"
GOLD_SCALING = "gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv"
GOLD_COLUMNS = ("image_id", "bbox_name", "original_x1", "original_y1", "original_x2", "original_y2", "annotator")
SPLIT_DIR = "silver_dataset/splits"
SPLIT_FILES = {"train.csv": "train", "valid.csv": "validation", "test.csv": "test"}
AVOID_FILE = "images_to_avoid.csv"
SPLIT_COLUMNS = ("subject_id", "study_id", "dicom_id", "path", "ViewPosition")
SCENE_GRAPH_DIR = "silver_dataset/scene_graph"
SCENE_GRAPH_ZIP = "silver_dataset/scene_graph.zip"
SCENE_GRAPH_SUFFIX = "_SceneGraph.json"
# A box in original pixels, in gold rows and scene-graph objects alike (never the 224-grid x1..y2).
ORIGINAL = ("original_x1", "original_y1", "original_x2", "original_y2")


def dataset_dir(root: Path) -> Path:
    """The folder holding ``gold_dataset/`` and ``silver_dataset/``: ``root`` or ``root/<ROOT_NAME>``."""
    nested = root / ROOT_NAME
    return nested if not (root / "silver_dataset").is_dir() and nested.is_dir() else root


def dicom_id_of(image_id: str | None) -> str:
    """A gold file's ``image_id`` as a dicom_id: surrounding spaces and the ``.dcm`` suffix removed."""
    return (image_id or "").strip().removesuffix(".dcm")


def require_file_columns(path: Path, required: tuple[str, ...]) -> None:
    """Refuse a missing or empty file or one without the required columns, in one line."""
    if not path.is_file():
        raise CxrdataError(f"Chest ImaGenome file {path} does not exist")
    require_columns(path, required)


def read_listing(root: Path, name: str) -> pl.DataFrame:
    """The split file ``name`` (or images_to_avoid.csv) of ``root``: its :data:`SPLIT_COLUMNS`, as text."""
    return read_text_csv(root / SPLIT_DIR / name).select(SPLIT_COLUMNS)
