"""The silver scene graphs of the synthetic Chest ImaGenome sample (FORMATS.md 3.2), one JSON per image.

Objects carry integer original pixels and the integer 224-letterbox box derived from them; attributes
are parallel per-phrase lists; a study with an earlier one gets a comparison relationship. Written
into ``silver_dataset/scene_graph/`` or, zipped, into ``silver_dataset/scene_graph.zip``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from cxrdata.boxes import Letterbox
from cxrdata.sample import _synth
from cxrdata.sample.imagenome_plan import PHRASES, FrontalImage, choose_sentences, wiggle

SCENE_GRAPH_DIR = "silver_dataset/scene_graph"
SCENE_GRAPH_ZIP = "silver_dataset/scene_graph.zip"
SCENE_GRAPH_KEYS: tuple[str, ...] = (
    "image_id", "viewpoint", "patient_id", "study_id", "gender", "age_decile", "reason_for_exam",
    "StudyOrder", "StudyDateTime", "objects", "attributes", "relationships",
)
# The 36 names silver objects can carry (the 29 of rgrg + 7 more), and the 26 gold names.
SILVER_NAMES: tuple[str, ...] = (
    "right lung", "right upper lung zone", "right mid lung zone", "right lower lung zone",
    "right hilar structures", "right apical zone", "right costophrenic angle", "right hemidiaphragm",
    "left lung", "left upper lung zone", "left mid lung zone", "left lower lung zone", "left hilar structures",
    "left apical zone", "left costophrenic angle", "left hemidiaphragm", "trachea", "spine", "right clavicle",
    "left clavicle", "aortic arch", "mediastinum", "upper mediastinum", "svc", "cardiac silhouette",
    "cavoatrial junction", "right atrium", "carina", "abdomen", "right cardiophrenic angle",
    "left cardiophrenic angle", "left cardiac silhouette", "right cardiac silhouette", "descending aorta",
    "left upper abdomen", "right upper abdomen",
)
_SEVERITY = {"Mild": "severity|yes|mild", "Small": "severity|yes|mild"}
_ZIP_TIME = (2021, 7, 13, 0, 0, 0)  # fixed member dates: the same bytes on every run


def write_scene_graphs(root: Path, texts: dict[str, str], zipped: bool, planted: dict[str, str]) -> list[Path]:
    """The scene-graph JSONs in a folder, or in ``scene_graph.zip`` (members under ``scene_graph/``)."""
    if zipped:
        path = root / SCENE_GRAPH_ZIP
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in texts.items():
                archive.writestr(zipfile.ZipInfo(f"scene_graph/{name}", _ZIP_TIME), text, zipfile.ZIP_DEFLATED)
        return [path]
    folder = root / SCENE_GRAPH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in texts.items():
        path = folder / name
        if name == f"{planted.get('scene_graph_directory')}_SceneGraph.json":
            path.mkdir()  # a folder where the file should be
        elif name == f"{planted.get('scene_graph_unreadable')}_SceneGraph.json":
            os.symlink(name, path)  # a link to itself: opening it fails (ELOOP), as an unreadable file does
        else:
            path.write_text(text)
        files.append(path)
    return files


def scene_graph(im: FrontalImage, rng: np.random.Generator, study_order: dict[int, tuple[int, int | None]]) -> dict:
    """The scene graph of ``im``: its 36 silver objects, two to four report sentences as attributes, and a
    comparison with the previous study when there is one."""
    lb = Letterbox.fit(im.width, im.height, 224)
    anatomy = _synth.anatomy(im.width, im.height)
    objects = [_object(im, name, wiggle(rng, anatomy[name]), lb) for name in SILVER_NAMES]
    chosen = choose_sentences(rng)
    regions: dict[str, list[tuple[int, str, tuple[str, ...]]]] = {}
    for sentence_index, k in enumerate(chosen):
        text, names, attributes = PHRASES[k]
        for name in names:
            regions.setdefault(name, []).append((sentence_index, text, attributes))
    attributes = [_attribute(im, name, entries) for name, entries in regions.items()]
    order, prior = study_order[im.study_id]
    age = 20 + (im.subject_id % 7) * 10
    return {
        "image_id": im.dicom_id,
        "viewpoint": im.view,
        "patient_id": im.subject_id,
        "study_id": im.study_id,
        "gender": "FM"[im.subject_id % 2],
        "age_decile": f"{age}-{age + 10}",
        "reason_for_exam": "___M with shortness of breath  // eval for pneumonia",
        "StudyOrder": order,
        "StudyDateTime": im.study_datetime,
        "objects": objects,
        "attributes": attributes,
        "relationships": [] if prior is None else [_relationship(im, prior, attributes[0])],
    }


def _object(im: FrontalImage, name: str, box: tuple[float, ...], lb: Letterbox) -> dict:
    """One silver object: integer original pixels and the integer 224-letterbox box derived from them."""
    ox1, oy1, ox2, oy2 = (round(box[0] * im.width), round(box[1] * im.height),
                          round(box[2] * im.width), round(box[3] * im.height))
    return object_from_pixels(im, name, (ox1, oy1, ox2, oy2), lb)


def object_from_pixels(im: FrontalImage, name: str, pixels: tuple[int, int, int, int], lb: Letterbox) -> dict:
    ox1, oy1, ox2, oy2 = pixels
    x1, y1 = round(ox1 * lb.ratio + lb.left), round(oy1 * lb.ratio + lb.top)
    x2, y2 = round(ox2 * lb.ratio + lb.left), round(oy2 * lb.ratio + lb.top)
    return {
        "object_id": f"{im.dicom_id}_{name}",
        "x1": x1, "y1": y1, "x2": x2, "y2": y2, "width": x2 - x1, "height": y2 - y1,
        "bbox_name": name,
        "synsets": [_cui(name)],
        "name": name[0].upper() + name[1:],
        "original_x1": ox1, "original_y1": oy1, "original_x2": ox2, "original_y2": oy2,
        "original_width": ox2 - ox1, "original_height": oy2 - oy1,
    }


def _attribute(im: FrontalImage, name: str, entries: list[tuple[int, str, tuple[str, ...]]]) -> dict:
    """One attributes[] entry: parallel per-phrase lists, as in the silver scene graphs."""
    return {
        name: True,
        "bbox_name": name,
        "synsets": [_cui(name)],
        "name": name[0].upper() + name[1:],
        "attributes": [list(attrs) for _, _, attrs in entries],
        "attributes_ids": [[_cui(a) for a in attrs] for _, _, attrs in entries],
        "phrases": [text for _, text, _ in entries],
        "phrase_IDs": [f"{im.study_id}|{index}" for index, _, _ in entries],
        "sections": ["finalreport" for _ in entries],
        "comparison_cues": [[] for _ in entries],
        "temporal_cues": [["temporal|yes|acute"] if "new" in text else [] for _, text, _ in entries],
        "severity_cues": [[_SEVERITY[text.split()[0]]] if text.split()[0] in _SEVERITY else []
                          for _, text, _ in entries],
        "texture_cues": [[] for _ in entries],
        "object_id": f"{im.dicom_id}_{name}",
    }


def _relationship(im: FrontalImage, prior_study: int, attribute: dict) -> dict:
    name = attribute["bbox_name"]
    return {
        "relationship_id": f"{im.study_id}|{prior_study}|{name}",
        "predicate": "['No status change']",
        "synsets": [_cui("no change")],
        "relationship_names": ["comparison|yes|no change"],
        "relationship_contexts": [1.0],
        "phrase": attribute["phrases"][0],
        "attributes": attribute["attributes"][0],
        "bbox_name": name,
        "subject_id": f"{im.dicom_id}_{name}",
        "object_id": f"{prior_study}_{name}",
    }


def _cui(text: str) -> str:
    """A stable fake UMLS-like id (``CL`` + 6 digits) for a name; not a real concept id."""
    return "CL" + str(int(hashlib.sha1(text.encode()).hexdigest(), 16) % 1_000_000).zfill(6)
