"""A synthetic Chest ImaGenome 1.0.0 download on top of a MIMIC-CXR-JPG sample (FORMATS.md section 3).

Layout written under ``out/chest-imagenome-dataset-1.0.0``::

    gold_dataset/gold_bbox_coordinate_annotations_1000images.csv   18 columns, ``.dcm`` image ids
    gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv image_id,top,bottom,left,right,ratio
    gold_dataset/gold_attributes_relations_500pts_500studies1st.txt TSV, one row per (sentence, bbox, attribute)
    silver_dataset/scene_graph/<dicom_id>_SceneGraph.json         one per frontal image (scene_graph.zip unzipped)
    silver_dataset/scene_graph.zip                                 instead of the folder with ``zipped=True``
    silver_dataset/splits/{train,valid,test}.csv                   leading unnamed index column, ``.dcm`` paths
    silver_dataset/splits/images_to_avoid.csv                      every frontal image of the gold patients

The images and their sizes come from the MIMIC sample's metadata (``Rows``/``Columns``); the 224 grid
is ``Letterbox.fit(width, height, 224)``, so ``x224 = x_original * ratio + left`` (the scaling CSV
holds those exact, unrounded values; the real file's rounding is unverified). ImaGenome's splits are
its own, by patient; one gold patient is deliberately in ``train`` so a reader must exclude it.
Defects: a negative, a zero-area and an out-of-bounds silver box, a split id with no scene graph,
a truncated scene-graph JSON. The gold attributes file covers the first study of each gold patient
(its columns: docs/formats/chest-imagenome.md); sentences keep their report line breaks.

``faults=True`` adds the defects of a hostile download (:attr:`ImagenomeSample.faults`, fault ->
dicom_id): a gold box row repeated verbatim and one repeated with other coordinates, a gold attribute
row repeated verbatim and one repeated with the opposite ``context``, an attribute row without its
sentence, a null phrase in a scene graph, ids that would name a path outside their folder (a gold
``image_id`` and a split ``dicom_id``), and a scene graph that cannot be read: a folder in its place
and a symbolic link to itself, or with ``zipped=True`` a member whose compressed bytes are damaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrdata.sample import tables
from cxrdata.sample.imagenome_defects import UNREADABLE_GRAPHS, break_boxes, damage_member
from cxrdata.sample.imagenome_gold import (
    GOLD_ATTRIBUTES,
    GOLD_BOXES,
    GOLD_NAMES,
    GOLD_SCALING,
    write_gold_attributes,
    write_gold_boxes,
)
from cxrdata.sample.imagenome_graphs import (
    SCENE_GRAPH_DIR,
    SCENE_GRAPH_ZIP,
    SILVER_NAMES,
    scene_graph,
    write_scene_graphs,
)
from cxrdata.sample.imagenome_plan import FrontalImage, assign_splits, frontal_images, order_studies

__all__ = [
    "GOLD_ATTRIBUTES", "GOLD_BOXES", "GOLD_NAMES", "GOLD_SCALING", "ROOT_NAME", "SCENE_GRAPH_DIR", "SCENE_GRAPH_ZIP",
    "SILVER_NAMES", "SPLIT_COLUMNS", "SPLIT_DIR", "SPLIT_FILES", "ImagenomeSample", "write_imagenome_sample",
]

ROOT_NAME = "chest-imagenome-dataset-1.0.0"
SPLIT_DIR = "silver_dataset/splits"
SPLIT_FILES = {"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}
SPLIT_COLUMNS: tuple[str, ...] = ("subject_id", "study_id", "dicom_id", "path", "ViewPosition")


@dataclass(frozen=True)
class ImagenomeSample:
    """What was written, with the ids of every deliberate defect."""

    root: Path
    mimic_root: Path
    image_sizes: dict[str, tuple[int, int]]  # dicom_id -> (width, height), from MIMIC metadata
    splits: dict[str, tuple[str, ...]]  # train/valid/test -> dicom_ids listed in that file
    scene_graph_ids: tuple[str, ...]  # JSONs written and parseable
    gold_ids: tuple[str, ...]  # dicom_ids in the gold CSVs (without .dcm)
    avoid_ids: tuple[str, ...]  # images_to_avoid.csv
    gold_rows: int
    objects: int  # silver objects over the parseable scene graphs, defects included
    attribute_entries: int  # silver attributes[] entries over the parseable scene graphs
    negative_box: tuple[str, str]  # (dicom_id, bbox_name)
    zero_area_box: tuple[str, str]
    out_of_bounds_box: tuple[str, str]
    missing_scene_graph: str  # dicom_id listed in a split, with no JSON
    truncated_scene_graph: str  # dicom_id whose JSON does not parse
    gold_attribute_ids: tuple[str, ...] = ()  # gold dicom_ids with rows in the attributes TSV
    gold_attribute_rows: int = 0  # data rows of the attributes TSV, faults included
    files: list[Path] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)  # faults=True: fault -> dicom_id

    def summary(self) -> str:
        return (f"wrote {len(self.gold_ids)} gold images and {len(self.scene_graph_ids)} scene graphs to {self.root}, "
                f"on the MIMIC-CXR-JPG sample in {self.mimic_root}")


def write_imagenome_sample(
    out: Path | str, mimic_root: Path | str | None = None, seed: int = 0, subjects: int = 6,
    faults: bool = False, zipped: bool = False,
) -> ImagenomeSample:
    """Write a synthetic Chest ImaGenome tree under ``out``; byte-identical for the same arguments.

    ``mimic_root``: an existing MIMIC-CXR-JPG sample; when None one is generated (``subjects``
    patients) into ``out/mimic-cxr-jpg`` with helper ``write_mimic_sample``. ``zipped``: the scene
    graphs as ``scene_graph.zip`` (the download as shipped) instead of the unzipped folder.
    ``faults``: the hostile-download defects of the module docstring (5 non-gold images needed).
    """
    out = Path(out)
    if mimic_root is None:
        from cxrdata.sample.mimic import write_mimic_sample

        mimic_root = out / "mimic-cxr-jpg"
        write_mimic_sample(mimic_root, subjects=subjects, seed=seed)
    mimic_root = Path(mimic_root)
    root = out / ROOT_NAME
    rng = np.random.default_rng([seed, 3])
    images = frontal_images(mimic_root)
    images, gold_subjects = assign_splits(images)
    gold = [im for im in images if im.subject_id in gold_subjects]
    others = [im for im in images if im.subject_id not in gold_subjects]
    if len(others) < (5 if faults else 3):
        raise ValueError(f"the MIMIC sample needs at least {5 if faults else 3} frontal images outside the gold "
                         "patients")
    missing, truncated, defective = others[0], others[1], others[2]
    planted: dict[str, str] = {}
    if faults:
        planted = {"phrase_missing": defective.dicom_id, "scene_graph_directory": others[3].dicom_id,
                   "scene_graph_unreadable": others[4].dicom_id}
        if zipped:
            planted = {"phrase_missing": defective.dicom_id, "scene_graph_corrupt_member": others[3].dicom_id}

    files = _write_splits(root, images, gold, planted if faults else None)
    files += write_gold_boxes(root, gold, rng, planted if faults else None)
    study_order = order_studies(images)
    attribute_file, attribute_ids, attribute_rows = write_gold_attributes(
        root, gold, study_order, np.random.default_rng([seed, 3, 1]), planted if faults else None)
    files.append(attribute_file)
    graphs: list[str] = []
    texts: dict[str, str] = {}
    n_objects = n_attributes = 0
    defects: dict[str, tuple[str, str]] = {}
    for im in images:
        if im is missing:
            continue
        graph = scene_graph(im, rng, study_order)
        if im is defective:
            defects = break_boxes(graph, im)
            if faults:
                graph["attributes"][0]["phrases"][0] = None  # a null phrase (must not become "None")
        text = json.dumps(graph)
        if im is truncated:
            text = text[: len(text) // 2]
        elif im.dicom_id not in {planted.get(k) for k in UNREADABLE_GRAPHS}:
            graphs.append(im.dicom_id)
            n_objects += len(graph["objects"])
            n_attributes += len(graph["attributes"])
        texts[f"{im.dicom_id}_SceneGraph.json"] = text
    files += write_scene_graphs(root, texts, zipped, planted)
    if "scene_graph_corrupt_member" in planted:
        damage_member(root / SCENE_GRAPH_ZIP, f"scene_graph/{planted['scene_graph_corrupt_member']}_SceneGraph.json")

    split_ids = {name: tuple(im.dicom_id for im in images if im.split == name) for name in SPLIT_FILES}
    return ImagenomeSample(
        root=root,
        mimic_root=mimic_root,
        image_sizes={im.dicom_id: (im.width, im.height) for im in images},
        splits=split_ids,
        scene_graph_ids=tuple(graphs),
        gold_ids=tuple(im.dicom_id for im in gold),
        avoid_ids=tuple(im.dicom_id for im in gold),
        gold_rows=len(gold) * len(GOLD_NAMES),
        objects=n_objects,
        attribute_entries=n_attributes,
        gold_attribute_ids=attribute_ids,
        gold_attribute_rows=attribute_rows,
        faults=planted,
        negative_box=defects["negative"],
        zero_area_box=defects["zero_area"],
        out_of_bounds_box=defects["out_of_bounds"],
        missing_scene_graph=missing.dicom_id,
        truncated_scene_graph=truncated.dicom_id,
        files=files,
    )


def _write_splits(root: Path, images: list[FrontalImage], gold: list[FrontalImage],
                  planted: dict[str, str] | None) -> list[Path]:
    """Split CSVs with the leading unnamed pandas index (row number in the full frontal list)."""
    files = []
    for name, filename in SPLIT_FILES.items():
        rows = [[str(k), *im.split_row()] for k, im in enumerate(images) if im.split == name]
        if planted is not None and name == "train":  # an id that would name a file outside scene_graph/
            first = next(im for im in images if im.split == name)
            planted["silver_bad_id"] = "../../evil"
            rows.append([str(len(images)), str(first.subject_id), str(first.study_id), "../../evil",
                         first.path.replace(first.dicom_id, "../../evil"), first.view])
        files.append(tables.write_csv(root / SPLIT_DIR / filename, ("", *SPLIT_COLUMNS), rows))
    avoid = [im.split_row() for im in gold]
    files.append(tables.write_csv(root / SPLIT_DIR / "images_to_avoid.csv", SPLIT_COLUMNS, avoid))
    return files
