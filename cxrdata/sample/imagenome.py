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

import csv
import gzip
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cxrdata.boxes import Letterbox
from cxrdata.sample import _synth, tables

ROOT_NAME = "chest-imagenome-dataset-1.0.0"
GOLD_BOXES = "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv"
GOLD_SCALING = "gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv"
GOLD_ATTRIBUTES = "gold_dataset/gold_attributes_relations_500pts_500studies1st.txt"
# By name from public readers (docs/formats/chest-imagenome.md); the real column order is not published.
GOLD_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "patient_id", "study_id", "image_id", "row_id", "bbox", "relation", "label_name", "categoryID", "context",
    "sentence", "section",
)
SCENE_GRAPH_DIR = "silver_dataset/scene_graph"
SCENE_GRAPH_ZIP = "silver_dataset/scene_graph.zip"
SPLIT_DIR = "silver_dataset/splits"
SPLIT_FILES = {"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}
GOLD_COLUMNS: tuple[str, ...] = (
    "image_id", "x1", "y1", "x2", "y2", "width", "height", "bbox_name", "annot_id",
    "original_x1", "original_x2", "original_y1", "original_y2", "original_width", "original_height",
    "annotator", "coord224", "coord_original",
)
SPLIT_COLUMNS: tuple[str, ...] = ("subject_id", "study_id", "dicom_id", "path", "ViewPosition")
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
GOLD_NAMES: tuple[str, ...] = (
    "aortic arch", "cardiac silhouette", "carina", "cavoatrial junction", "left apical zone", "left clavicle",
    "left costophrenic angle", "left hemidiaphragm", "left hilar structures", "left lower lung zone", "left lung",
    "left mid lung zone", "left upper lung zone", "right apical zone", "right atrium", "right clavicle",
    "right costophrenic angle", "right hemidiaphragm", "right hilar structures", "right lower lung zone",
    "right lung", "right mid lung zone", "right upper lung zone", "svc", "trachea", "upper mediastinum",
)
ANNOTATORS = ("C", "W", "J", "S")
SPLIT_CYCLE = ("train", "train", "valid", "test", "train")  # per patient, gold patients aside

# Report sentences with their regions and attribute strings; "left chest wall" has no box.
PHRASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Right lower lobe opacity\n is concerning for pneumonia.", ("right lower lung zone", "right lung"),
     ("anatomicalfinding|yes|lung opacity", "disease|yes|pneumonia", "nlp|yes|abnormal")),
    ("Small left pleural effusion\n is new.", ("left costophrenic angle", "left lung"),
     ("anatomicalfinding|yes|pleural effusion", "nlp|yes|abnormal")),
    ("The heart size is normal.", ("cardiac silhouette",),
     ("anatomicalfinding|no|enlarged cardiac silhouette", "nlp|yes|normal")),
    ("There is no pneumothorax.", ("right lung", "left lung"),
     ("anatomicalfinding|no|pneumothorax", "nlp|yes|normal")),
    ("Left chest wall pacemaker\n with leads in standard position.", ("left chest wall",),
     ("tubesandlines|yes|pacemaker", "nlp|yes|abnormal")),
    ("Mild bibasilar atelectasis.", ("left lower lung zone", "right lower lung zone"),
     ("anatomicalfinding|yes|atelectasis", "nlp|yes|abnormal")),
    ("Mediastinal contours are unremarkable.", ("mediastinum",),
     ("anatomicalfinding|no|mediastinal widening", "nlp|yes|normal")),
)
_SEVERITY = {"Mild": "severity|yes|mild", "Small": "severity|yes|mild"}
UNREADABLE_GRAPHS = ("scene_graph_directory", "scene_graph_unreadable", "scene_graph_corrupt_member")
SECTION = "finalreport"  # the section name silver scene graphs give (FORMATS.md 3.2)
_ZIP_TIME = (2021, 7, 13, 0, 0, 0)  # fixed member dates: the same bytes on every run


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


@dataclass(frozen=True)
class _Image:
    dicom_id: str
    subject_id: int
    study_id: int
    view: str
    width: int
    height: int
    study_datetime: str
    split: str = ""

    @property
    def path(self) -> str:
        s = str(self.subject_id)
        return f"files/p{s[:2]}/p{s}/s{self.study_id}/{self.dicom_id}.dcm"

    def split_row(self) -> list[str]:
        return [str(self.subject_id), str(self.study_id), self.dicom_id, self.path, self.view]


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
    images = _frontal_images(mimic_root)
    images, gold_subjects = _assign_splits(images)
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
    files += _write_gold(root, gold, rng, planted if faults else None)
    study_order = _study_order(images)
    attribute_file, attribute_ids, attribute_rows = _write_gold_attributes(
        root, gold, study_order, np.random.default_rng([seed, 3, 1]), planted if faults else None)
    files.append(attribute_file)
    graphs: list[str] = []
    texts: dict[str, str] = {}
    n_objects = n_attributes = 0
    defects: dict[str, tuple[str, str]] = {}
    for im in images:
        if im is missing:
            continue
        graph = _scene_graph(im, rng, study_order)
        if im is defective:
            defects = _break_boxes(graph, im)
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
    files += _write_scene_graphs(root, texts, zipped, planted)

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


def _frontal_images(mimic_root: Path) -> list[_Image]:
    """PA/AP images of the MIMIC sample with their original size, sorted by (subject, study, dicom)."""
    found = sorted(mimic_root.rglob("mimic-cxr-2.0.0-metadata.csv.gz"))
    if not found:
        raise FileNotFoundError(f"no mimic-cxr-2.0.0-metadata.csv.gz under {mimic_root}")
    with gzip.open(found[0], "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    images = []
    for row in rows:
        if row["ViewPosition"] not in ("PA", "AP"):
            continue
        time = f"{int(float(row['StudyTime'])):06d}"
        date = row["StudyDate"]
        images.append(_Image(
            dicom_id=row["dicom_id"], subject_id=int(row["subject_id"]), study_id=int(row["study_id"]),
            view=row["ViewPosition"], width=int(row["Columns"]), height=int(row["Rows"]),
            study_datetime=f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}:{time[4:]}",
        ))
    return sorted(images, key=lambda im: (im.subject_id, im.study_id, im.dicom_id))


def _assign_splits(images: list[_Image]) -> tuple[list[_Image], set[int]]:
    """ImaGenome's own patient-level split; gold = the first train patient and the first test patient."""
    subjects = sorted({im.subject_id for im in images})
    split_of = {s: SPLIT_CYCLE[k % len(SPLIT_CYCLE)] for k, s in enumerate(subjects)}
    gold = {next(s for s in subjects if split_of[s] == name) for name in ("train", "test") if name in split_of.values()}
    out = [replace(im, split=split_of[im.subject_id]) for im in images]
    return out, gold


def _study_order(images: list[_Image]) -> dict[int, tuple[int, int | None]]:
    """study_id -> (1-based order within the patient by date, the previous study's id)."""
    by_subject: dict[int, list[tuple[str, int]]] = {}
    for im in images:
        entry = (im.study_datetime, im.study_id)
        if entry not in by_subject.setdefault(im.subject_id, []):
            by_subject[im.subject_id].append(entry)
    order: dict[int, tuple[int, int | None]] = {}
    for studies in by_subject.values():
        studies.sort()
        for k, (_, study) in enumerate(studies):
            order[study] = (k + 1, studies[k - 1][1] if k else None)
    return order


def _write_splits(root: Path, images: list[_Image], gold: list[_Image], planted: dict[str, str] | None) -> list[Path]:
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


def _write_gold(root: Path, gold: list[_Image], rng: np.random.Generator, planted: dict[str, str] | None) -> list[Path]:
    """Gold boxes: integer 224 coordinates, original = (x224 - left) / ratio as float64."""
    rows, scaling = [], []
    for k, im in enumerate(gold):
        lb = Letterbox.fit(im.width, im.height, 224)
        image_id = f"{im.dicom_id}.dcm"
        scaling.append([image_id, _f(lb.top), _f(lb.top), _f(lb.left), _f(lb.left), _f(lb.ratio)])
        anatomy = _synth.anatomy(im.width, im.height)
        for name in GOLD_NAMES:
            sq = [float(round(v)) for v in lb.to_square(_wiggle(rng, anatomy[name]))]
            x1, y1, x2, y2 = sq
            ox1, oy1 = (x1 - lb.left) / lb.ratio, (y1 - lb.top) / lb.ratio
            ox2, oy2 = (x2 - lb.left) / lb.ratio, (y2 - lb.top) / lb.ratio
            rows.append([
                image_id, *map(_f, (x1, y1, x2, y2, x2 - x1, y2 - y1)), name, f"{im.dicom_id}|{name}",
                *map(_f, (ox1, ox2, oy1, oy2, ox2 - ox1, oy2 - oy1)), ANNOTATORS[k % len(ANNOTATORS)],
                str([x1, y1, x2, y2]), str([round(v, 10) + 0.0 for v in (ox1, oy1, ox2, oy2)]),
            ])
    if planted is not None:
        _gold_faults(rows, gold, planted)
    return [
        tables.write_csv(root / GOLD_BOXES, GOLD_COLUMNS, rows),
        tables.write_csv(root / GOLD_SCALING, ("image_id", "top", "bottom", "left", "right", "ratio"), scaling),
    ]


def _gold_faults(rows: list[list[str]], gold: list[_Image], planted: dict[str, str]) -> None:
    """A verbatim repeat, a repeat with other coordinates (a conflict), and an unsafe image_id."""
    repeated, conflicting = gold[0].dicom_id, gold[1].dicom_id
    planted.update(gold_box_row_duplicate=repeated, gold_box_conflict=conflicting, gold_bad_id="../evil")
    at = next(k for k, r in enumerate(rows) if r[0] == f"{repeated}.dcm")
    rows.insert(at + 1, list(rows[at]))
    at = next(k for k, r in enumerate(rows) if r[0] == f"{conflicting}.dcm" and r[7] == "trachea")
    moved = list(rows[at])
    moved[9] = _f(float(moved[9]) + 7.0)  # original_x1
    rows.insert(at + 1, moved)
    rows.append(["../evil.dcm", *rows[at][1:]])


def _write_gold_attributes(
    root: Path, gold: list[_Image], study_order: dict[int, tuple[int, int | None]], rng: np.random.Generator,
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
        chosen = sorted(int(i) for i in rng.choice(len(PHRASES), size=int(rng.integers(2, 5)), replace=False))
        for index, k in enumerate(chosen):
            text, names, attributes = PHRASES[k]
            for name in names:
                for attribute in attributes:
                    category, context, label = attribute.split("|")
                    rows.append([str(im.subject_id), str(im.study_id), f"{im.dicom_id}.dcm", f"{im.study_id}|{index}",
                                 name, "1" if context == "yes" else "0", label, category, context, text, SECTION])
    if planted is not None:
        rows.insert(1, list(rows[0]))  # a verbatim repeat
        flipped = list(rows[2])
        flipped[5], flipped[8] = ("0", "no") if flipped[8] == "yes" else ("1", "yes")
        rows.insert(3, flipped)  # the same (sentence, bbox, attribute) with the opposite context
        rows[-1][9] = ""  # a row whose sentence is missing
        planted.update(attribute_row_duplicate=rows[0][2].removesuffix(".dcm"),
                       attribute_conflict=rows[2][2].removesuffix(".dcm"),
                       attribute_sentence_missing=rows[-1][2].removesuffix(".dcm"))
    path = root / GOLD_ATTRIBUTES
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(GOLD_ATTRIBUTE_COLUMNS)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
    return path, tuple(ids), len(rows)


def _write_scene_graphs(root: Path, texts: dict[str, str], zipped: bool, planted: dict[str, str]) -> list[Path]:
    """The scene-graph JSONs in a folder, or in ``scene_graph.zip`` (members under ``scene_graph/``)."""
    if zipped:
        path = root / SCENE_GRAPH_ZIP
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in texts.items():
                archive.writestr(zipfile.ZipInfo(f"scene_graph/{name}", _ZIP_TIME), text, zipfile.ZIP_DEFLATED)
        if "scene_graph_corrupt_member" in planted:
            _damage_member(path, f"scene_graph/{planted['scene_graph_corrupt_member']}_SceneGraph.json")
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


def _damage_member(archive: Path, member: str) -> None:
    """Flip bytes in the middle of one member's compressed data (its CRC or inflate then fails)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    for k in range(start + info.compress_size // 2, start + info.compress_size // 2 + 8):
        data[k] ^= 0xFF
    archive.write_bytes(bytes(data))


def _scene_graph(im: _Image, rng: np.random.Generator, study_order: dict[int, tuple[int, int | None]]) -> dict:
    lb = Letterbox.fit(im.width, im.height, 224)
    anatomy = _synth.anatomy(im.width, im.height)
    objects = [_object(im, name, _wiggle(rng, anatomy[name]), lb) for name in SILVER_NAMES]
    chosen = sorted(int(i) for i in rng.choice(len(PHRASES), size=int(rng.integers(2, 5)), replace=False))
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


def _object(im: _Image, name: str, box: tuple[float, ...], lb: Letterbox) -> dict:
    """One silver object: integer original pixels and the integer 224-letterbox box derived from them."""
    ox1, oy1, ox2, oy2 = (round(box[0] * im.width), round(box[1] * im.height),
                          round(box[2] * im.width), round(box[3] * im.height))
    return _object_from_pixels(im, name, (ox1, oy1, ox2, oy2), lb)


def _object_from_pixels(im: _Image, name: str, pixels: tuple[int, int, int, int], lb: Letterbox) -> dict:
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


def _attribute(im: _Image, name: str, entries: list[tuple[int, str, tuple[str, ...]]]) -> dict:
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


def _relationship(im: _Image, prior_study: int, attribute: dict) -> dict:
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


def _break_boxes(graph: dict, im: _Image) -> dict[str, tuple[str, str]]:
    """Plant the three silver box defects in one scene graph, keeping 224 and original consistent."""
    lb = Letterbox.fit(im.width, im.height, 224)
    by_name = {obj["bbox_name"]: k for k, obj in enumerate(graph["objects"])}
    plans = {
        "negative": ("right clavicle", lambda b: (-round(0.05 * im.width), b[1], b[2], b[3])),
        "zero_area": ("carina", lambda b: (b[0], b[1], b[0], b[3])),
        "out_of_bounds": ("left costophrenic angle", lambda b: (b[0], b[1], round(1.25 * im.width), b[3])),
    }
    found = {}
    for defect, (name, change) in plans.items():
        obj = graph["objects"][by_name[name]]
        pixels = (obj["original_x1"], obj["original_y1"], obj["original_x2"], obj["original_y2"])
        graph["objects"][by_name[name]] = _object_from_pixels(im, name, change(pixels), lb)
        found[defect] = (im.dicom_id, name)
    return found


def _wiggle(rng: np.random.Generator, box: tuple[float, ...]) -> tuple[float, ...]:
    """Per-image variation of an anatomy box: up to 3% of its size, kept inside the image."""
    x0, y0, x1, y1 = box
    d = rng.uniform(-1, 1, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) * 0.03
    return tuple(float(v) for v in np.clip(np.array(box) + d, 0.0, 1.0))


def _cui(text: str) -> str:
    """A stable fake UMLS-like id (``CL`` + 6 digits) for a name; not a real concept id."""
    return "CL" + str(int(hashlib.sha1(text.encode()).hexdigest(), 16) % 1_000_000).zfill(6)


def _f(value: float) -> str:
    """float64 as pandas writes it (rounded to 10 decimals so that ``0.0`` is not ``-1.4e-14``)."""
    return repr(round(float(value), 10) + 0.0)
