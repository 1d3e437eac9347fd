"""The synthetic Chest ImaGenome tree has the real files, columns, quirks and the planted defects."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from pathlib import Path

import pytest
from cxrdata_testing import write_mini_mimic_metadata

from cxrdata.sample.imagenome import GOLD_NAMES, SILVER_NAMES, ImagenomeSample, write_imagenome_sample

GOLD_HEADER = [
    "image_id", "x1", "y1", "x2", "y2", "width", "height", "bbox_name", "annot_id",
    "original_x1", "original_x2", "original_y1", "original_y2", "original_width", "original_height",
    "annotator", "coord224", "coord_original",
]
SCENE_KEYS = [
    "image_id", "viewpoint", "patient_id", "study_id", "gender", "age_decile", "reason_for_exam",
    "StudyOrder", "StudyDateTime", "objects", "attributes", "relationships",
]




@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> ImagenomeSample:
    base = tmp_path_factory.mktemp("imagenome")
    mimic = write_mini_mimic_metadata(base / "mimic", lambda s, st: (2544 - 50 * st, 3056 - 100 * s))
    return write_imagenome_sample(base, mimic_root=mimic, seed=0)


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _graph(sample: ImagenomeSample, dicom_id: str) -> dict:
    return json.loads((sample.root / "silver_dataset/scene_graph" / f"{dicom_id}_SceneGraph.json").read_text())


def _scaling(sample: ImagenomeSample) -> dict[str, dict[str, float]]:
    header, rows = _csv(sample.root / "gold_dataset/gold_bbox_scaling_factors_original_to_224x224.csv")
    assert header == ["image_id", "top", "bottom", "left", "right", "ratio"]
    return {r[0]: dict(zip(header[1:], map(float, r[1:]), strict=True)) for r in rows}


def test_gold_boxes(sample: ImagenomeSample) -> None:
    header, rows = _csv(sample.root / "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv")
    assert header == GOLD_HEADER
    assert len(rows) == sample.gold_rows == len(sample.gold_ids) * 26
    scaling = _scaling(sample)
    assert set(scaling) == {f"{i}.dcm" for i in sample.gold_ids}
    for r in rows:
        row = dict(zip(header, r, strict=True))
        assert row["image_id"].endswith(".dcm")
        width, height = sample.image_sizes[row["image_id"].removesuffix(".dcm")]
        f = {k: float(v) for k, v in row.items() if k not in ("image_id", "bbox_name", "annot_id", "annotator",
                                                                "coord224", "coord_original")}
        assert all("." in row[k] for k in f)  # float64 columns
        assert ast.literal_eval(row["coord224"]) == [f["x1"], f["y1"], f["x2"], f["y2"]]
        assert ast.literal_eval(row["coord_original"]) == pytest.approx(
            [f["original_x1"], f["original_y1"], f["original_x2"], f["original_y2"]])
        s = scaling[row["image_id"]]
        assert s["ratio"] == pytest.approx(224 / max(width, height))
        for axis, pad in (("x", "left"), ("y", "top")):
            for k in "12":
                assert f[f"{axis}{k}"] == pytest.approx(f[f"original_{axis}{k}"] * s["ratio"] + s[pad], abs=1e-6)
        assert f["original_width"] == pytest.approx(f["original_x2"] - f["original_x1"])
        assert 0 <= f["original_x1"] < f["original_x2"] <= width and 0 <= f["original_y1"] < f["original_y2"] <= height
    assert {r[7] for r in rows} == set(GOLD_NAMES) and "mediastinum" not in GOLD_NAMES


def test_splits(sample: ImagenomeSample) -> None:
    listed: dict[str, str] = {}
    for name in ("train", "valid", "test"):
        header, rows = _csv(sample.root / "silver_dataset/splits" / f"{name}.csv")
        assert header == ["", "subject_id", "study_id", "dicom_id", "path", "ViewPosition"]
        assert tuple(r[3] for r in rows) == sample.splits[name]
        for r in rows:
            assert r[0].isdigit()
            assert r[4] == f"files/p{r[1][:2]}/p{r[1]}/s{r[2]}/{r[3]}.dcm"
            assert r[5] in ("PA", "AP")
            listed[r[3]] = name
    header, avoid = _csv(sample.root / "silver_dataset/splits/images_to_avoid.csv")
    assert header == ["subject_id", "study_id", "dicom_id", "path", "ViewPosition"]
    assert tuple(r[2] for r in avoid) == sample.avoid_ids == sample.gold_ids
    assert any(listed[i] == "train" for i in sample.avoid_ids)  # a reader must drop it from silver train
    subjects: dict[str, set[str]] = {}
    for name in ("train", "valid", "test"):
        for r in _csv(sample.root / "silver_dataset/splits" / f"{name}.csv")[1]:
            subjects.setdefault(r[1], set()).add(name)
    assert all(len(v) == 1 for v in subjects.values())


def test_scene_graphs(sample: ImagenomeSample) -> None:
    folder = sample.root / "silver_dataset/scene_graph"
    written = {p.name.removesuffix("_SceneGraph.json") for p in folder.iterdir()}
    assert written == {*sample.scene_graph_ids, sample.truncated_scene_graph}
    objects = attributes = 0
    newline = boxless = relations = 0
    for dicom_id in sample.scene_graph_ids:
        graph = _graph(sample, dicom_id)
        assert list(graph) == SCENE_KEYS and graph["image_id"] == dicom_id
        width, height = sample.image_sizes[dicom_id]
        ratio = 224 / max(width, height)
        left, top = (224 - width * ratio) / 2, (224 - height * ratio) / 2
        objects += len(graph["objects"])
        assert [o["bbox_name"] for o in graph["objects"]] == list(SILVER_NAMES)
        for o in graph["objects"]:
            assert o["object_id"] == f"{dicom_id}_{o['bbox_name']}"
            for k in "12":
                assert abs(o[f"x{k}"] - (o[f"original_x{k}"] * ratio + left)) <= 0.5
                assert abs(o[f"y{k}"] - (o[f"original_y{k}"] * ratio + top)) <= 0.5
            assert o["width"] == o["x2"] - o["x1"] and o["original_height"] == o["original_y2"] - o["original_y1"]
            assert all(isinstance(o[k], int) for k in ("x1", "original_x1", "original_y2"))
        box_names = {o["bbox_name"] for o in graph["objects"]}
        attributes += len(graph["attributes"])
        for a in graph["attributes"]:
            n = len(a["phrases"])
            assert a[a["bbox_name"]] is True
            for key in ("attributes", "attributes_ids", "phrase_IDs", "sections", "comparison_cues",
                        "temporal_cues", "severity_cues", "texture_cues"):
                assert len(a[key]) == n, key
            assert all(re.fullmatch(rf"{graph['study_id']}\|\d+", p) for p in a["phrase_IDs"])
            assert all(re.fullmatch(r"[a-z]+\|(yes|no)\|[a-z ]+", s) for group in a["attributes"] for s in group)
            newline += any("\n" in p for p in a["phrases"])
            boxless += a["bbox_name"] not in box_names
        relations += len(graph["relationships"])
        for rel in graph["relationships"]:
            assert graph["StudyOrder"] > 1 and rel["relationship_names"][0].startswith("comparison|")
    assert objects == sample.objects and attributes == sample.attribute_entries
    assert newline and boxless and relations


def test_defects(sample: ImagenomeSample) -> None:
    assert sample.missing_scene_graph in {i for ids in sample.splits.values() for i in ids}
    folder = sample.root / "silver_dataset/scene_graph"
    assert not (folder / f"{sample.missing_scene_graph}_SceneGraph.json").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads((folder / f"{sample.truncated_scene_graph}_SceneGraph.json").read_text())
    dicom_id = sample.negative_box[0]
    width, _ = sample.image_sizes[dicom_id]
    objects = {o["bbox_name"]: o for o in _graph(sample, dicom_id)["objects"]}
    assert objects[sample.negative_box[1]]["original_x1"] < 0
    zero = objects[sample.zero_area_box[1]]
    assert zero["original_x1"] == zero["original_x2"] and zero["original_width"] == 0
    assert objects[sample.out_of_bounds_box[1]]["original_x2"] > width * 1.1
    healthy = [o for o in objects.values() if o["bbox_name"] not in
               (sample.negative_box[1], sample.zero_area_box[1], sample.out_of_bounds_box[1])]
    assert all(0 <= o["original_x1"] < o["original_x2"] <= width for o in healthy)


ATTRIBUTES = "gold_dataset/gold_attributes_relations_500pts_500studies1st.txt"


def _tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        return list(reader.fieldnames or []), list(reader)


def test_gold_attributes_tsv(sample: ImagenomeSample) -> None:
    """The columns public readers use, one row per (sentence, bbox, attribute) of each gold patient's first study."""
    header, rows = _tsv(sample.root / ATTRIBUTES)
    assert header == ["patient_id", "study_id", "image_id", "row_id", "bbox", "relation", "label_name", "categoryID",
                      "context", "sentence", "section"]
    assert len(rows) == sample.gold_attribute_rows > 0
    assert {r["image_id"].removesuffix(".dcm") for r in rows} == set(sample.gold_attribute_ids)
    _, splits = _csv(sample.root / "silver_dataset/splits/images_to_avoid.csv")
    study_of = {r[2]: (r[0], r[1]) for r in splits}
    first_studies = {min(st for sub, st in study_of.values() if sub == s) for s, _ in study_of.values()}
    assert {study_of[i][1] for i in sample.gold_attribute_ids} == first_studies  # the "1st" of 500studies1st
    for r in rows:
        dicom_id = r["image_id"].removesuffix(".dcm")
        assert r["image_id"].endswith(".dcm") and (r["patient_id"], r["study_id"]) == study_of[dicom_id]
        assert re.fullmatch(rf"{r['study_id']}\|\d+", r["row_id"])
        assert (r["context"], r["relation"]) in (("yes", "1"), ("no", "0"))
        assert r["categoryID"] in ("anatomicalfinding", "disease", "nlp", "tubesandlines")
        assert r["section"] == "finalreport"
    assert any("\n" in r["sentence"] for r in rows)  # report line breaks kept, inside a quoted field


def test_faults_are_planted(tmp_path: Path, sample: ImagenomeSample) -> None:
    hostile = write_imagenome_sample(tmp_path / "faults", mimic_root=sample.mimic_root, seed=0, faults=True)
    faults = hostile.faults
    _, boxes = _csv(hostile.root / "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv")
    assert len(boxes) == sample.gold_rows + 3
    assert [r[0] for r in boxes if boxes.count(r) > 1] == [f"{faults['gold_box_row_duplicate']}.dcm"] * 2
    trachea = [r for r in boxes if r[0] == f"{faults['gold_box_conflict']}.dcm" and r[7] == "trachea"]
    assert len(trachea) == 2 and trachea[0][9] != trachea[1][9]
    assert [r[0] for r in boxes if not r[0].endswith("-4e384014.dcm")] == ["../evil.dcm"]
    _, rows = _tsv(hostile.root / ATTRIBUTES)
    assert rows[0] == rows[1] and rows[0]["image_id"] == f"{faults['attribute_row_duplicate']}.dcm"
    same = [k for k in rows[2] if k not in ("context", "relation")]
    assert [rows[2][k] for k in same] == [rows[3][k] for k in same] and rows[2]["context"] != rows[3]["context"]
    assert rows[-1]["sentence"] == "" and rows[-1]["image_id"] == f"{faults['attribute_sentence_missing']}.dcm"
    folder = hostile.root / "silver_dataset/scene_graph"
    assert (folder / f"{faults['scene_graph_directory']}_SceneGraph.json").is_dir()
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        (folder / f"{faults['scene_graph_unreadable']}_SceneGraph.json").read_bytes()
    graph = json.loads((folder / f"{faults['phrase_missing']}_SceneGraph.json").read_text())
    assert graph["attributes"][0]["phrases"][0] is None
    _, train = _csv(hostile.root / "silver_dataset/splits/train.csv")
    assert [r[3] for r in train if "/" in r[3]] == [faults["silver_bad_id"]] == ["../../evil"]


def test_zipped_scene_graphs_and_the_damaged_member(tmp_path: Path, sample: ImagenomeSample) -> None:
    import zipfile

    plain = write_imagenome_sample(tmp_path / "zip", mimic_root=sample.mimic_root, seed=0, zipped=True)
    assert not (plain.root / "silver_dataset/scene_graph").exists()
    with zipfile.ZipFile(plain.root / "silver_dataset/scene_graph.zip") as zf:
        names = zf.namelist()
        assert all(n.startswith("scene_graph/") and n.endswith("_SceneGraph.json") for n in names)
        assert zf.read(f"scene_graph/{sample.scene_graph_ids[0]}_SceneGraph.json") == (
            sample.root / "silver_dataset/scene_graph" / f"{sample.scene_graph_ids[0]}_SceneGraph.json").read_bytes()
    hostile = write_imagenome_sample(tmp_path / "zip-faults", mimic_root=sample.mimic_root, seed=0, zipped=True,
                                     faults=True)
    member = f"scene_graph/{hostile.faults['scene_graph_corrupt_member']}_SceneGraph.json"
    with zipfile.ZipFile(hostile.root / "silver_dataset/scene_graph.zip") as zf, \
            pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
        zf.read(member)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path: Path, sample: ImagenomeSample) -> None:
    again = write_imagenome_sample(tmp_path, mimic_root=sample.mimic_root, seed=0)
    assert _digest(again.root) == _digest(sample.root)


def test_on_generated_mimic_sample(tmp_path: Path) -> None:
    pytest.importorskip("cxrdata.sample.mimic")
    sample = write_imagenome_sample(tmp_path, seed=0)
    assert sample.mimic_root == tmp_path / "mimic-cxr-jpg"
    assert sample.scene_graph_ids and sample.gold_ids
