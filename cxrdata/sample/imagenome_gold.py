"""The gold files of the synthetic Chest ImaGenome sample: the box CSV, the scaling CSV and the attributes TSV.

Boxes are drawn on the 224 letterbox grid (integers) and converted back to original pixels as float64,
``original = (x224 - left) / ratio``; the attributes TSV covers each gold patient's first study, one
row per (sentence, bbox, attribute). The hostile-download rows come from
:mod:`cxrdata.sample.imagenome_defects`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from cxrdata.boxes import Letterbox
from cxrdata.sample import _synth, tables
from cxrdata.sample.imagenome_defects import plant_attribute_faults, plant_gold_box_faults
from cxrdata.sample.imagenome_plan import PHRASES, FrontalImage, choose_sentences, csv_float, wiggle

GOLD_BOXES = "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv"
GOLD_SCALING = "gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv"
GOLD_ATTRIBUTES = "gold_dataset/gold_attributes_relations_500pts_500studies1st.txt"
# By name from public readers (docs/formats/chest-imagenome.md); the real column order is not published.
GOLD_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "patient_id", "study_id", "image_id", "row_id", "bbox", "relation", "label_name", "categoryID", "context",
    "sentence", "section",
)
GOLD_COLUMNS: tuple[str, ...] = (
    "image_id", "x1", "y1", "x2", "y2", "width", "height", "bbox_name", "annot_id",
    "original_x1", "original_x2", "original_y1", "original_y2", "original_width", "original_height",
    "annotator", "coord224", "coord_original",
)
GOLD_NAMES: tuple[str, ...] = (
    "aortic arch", "cardiac silhouette", "carina", "cavoatrial junction", "left apical zone", "left clavicle",
    "left costophrenic angle", "left hemidiaphragm", "left hilar structures", "left lower lung zone", "left lung",
    "left mid lung zone", "left upper lung zone", "right apical zone", "right atrium", "right clavicle",
    "right costophrenic angle", "right hemidiaphragm", "right hilar structures", "right lower lung zone",
    "right lung", "right mid lung zone", "right upper lung zone", "svc", "trachea", "upper mediastinum",
)
ANNOTATORS = ("C", "W", "J", "S")
SECTION = "finalreport"  # the section name silver scene graphs give (FORMATS.md 3.2)


def write_gold_boxes(root: Path, gold: list[FrontalImage], rng: np.random.Generator,
                     planted: dict[str, str] | None) -> list[Path]:
    """Gold boxes: integer 224 coordinates, original = (x224 - left) / ratio as float64."""
    rows, scaling = [], []
    for k, im in enumerate(gold):
        lb = Letterbox.fit(im.width, im.height, 224)
        image_id = f"{im.dicom_id}.dcm"
        scaling.append([image_id, *map(csv_float, (lb.top, lb.top, lb.left, lb.left, lb.ratio))])
        anatomy = _synth.anatomy(im.width, im.height)
        for name in GOLD_NAMES:
            sq = [float(round(v)) for v in lb.to_square(wiggle(rng, anatomy[name]))]
            x1, y1, x2, y2 = sq
            ox1, oy1 = (x1 - lb.left) / lb.ratio, (y1 - lb.top) / lb.ratio
            ox2, oy2 = (x2 - lb.left) / lb.ratio, (y2 - lb.top) / lb.ratio
            rows.append([
                image_id, *map(csv_float, (x1, y1, x2, y2, x2 - x1, y2 - y1)), name, f"{im.dicom_id}|{name}",
                *map(csv_float, (ox1, ox2, oy1, oy2, ox2 - ox1, oy2 - oy1)), ANNOTATORS[k % len(ANNOTATORS)],
                str([x1, y1, x2, y2]), str([round(v, 10) + 0.0 for v in (ox1, oy1, ox2, oy2)]),
            ])
    if planted is not None:
        plant_gold_box_faults(rows, gold, planted)
    return [
        tables.write_csv(root / GOLD_BOXES, GOLD_COLUMNS, rows),
        tables.write_csv(root / GOLD_SCALING, ("image_id", "top", "bottom", "left", "right", "ratio"), scaling),
    ]


def write_gold_attributes(
    root: Path, gold: list[FrontalImage], study_order: dict[int, tuple[int, int | None]], rng: np.random.Generator,
    planted: dict[str, str] | None,
) -> tuple[Path, tuple[str, ...], int]:
    """The gold attributes TSV for the images of each gold patient's first study: one row per
    (sentence, bbox, attribute); ``relation`` 1/0 mirrors ``context`` yes/no."""
    rows: list[list[str]] = []
    ids: list[str] = []
    for im in gold:
        if study_order[im.study_id][0] != 1:
            continue
        ids.append(im.dicom_id)
        chosen = choose_sentences(rng)
        for index, k in enumerate(chosen):
            text, names, attributes = PHRASES[k]
            for name in names:
                for attribute in attributes:
                    category, context, label = attribute.split("|")
                    rows.append([str(im.subject_id), str(im.study_id), f"{im.dicom_id}.dcm", f"{im.study_id}|{index}",
                                 name, "1" if context == "yes" else "0", label, category, context, text, SECTION])
    if planted is not None:
        plant_attribute_faults(rows, planted)
    path = root / GOLD_ATTRIBUTES
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(GOLD_ATTRIBUTE_COLUMNS)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
    return path, tuple(ids), len(rows)
