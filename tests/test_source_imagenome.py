"""The Chest ImaGenome readers (gold and silver) on the synthetic sample, stage by stage."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from cxrdata_testing import plan_of, run_plan, write_mini_mimic_metadata

from cxrdata.errors import CxrdataError
from cxrdata.io.schema import load_schema
from cxrdata.sample import _synth
from cxrdata.sample.imagenome import ImagenomeSample, write_imagenome_sample
from cxrdata.sources.imagenome import ENTRY, ImagenomeOptions, ImagenomeSilverSource

SCENE_GRAPHS = "silver_dataset/scene_graph"


@dataclass(frozen=True)
class Fixture:
    """The ImaGenome sample on a small MIMIC-CXR-JPG tree, with two image defects planted."""

    sample: ImagenomeSample
    resized: str  # gold dicom_id whose JPEG is half its metadata size (a resized tree)
    truncated_jpeg: str  # silver dicom_id whose JPEG is cut short




def _jpeg(path: Path, width: int, height: int, seed: int) -> None:
    picture = _synth.chest(width, height, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", np.round(picture * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(buf.tobytes())


def write_fixture(base: Path) -> Fixture:
    """Mini MIMIC + ImaGenome sample; every frontal image gets a JPEG, one half-size, one truncated."""
    write_mini_mimic_metadata(base / "mimic", lambda s, st: (250 + 20 * st, 300 + 10 * s))
    sample = write_imagenome_sample(base, mimic_root=base / "mimic", seed=0)
    listed = {}
    for name in ("train", "valid", "test"):
        with (sample.root / "silver_dataset" / "splits" / f"{name}.csv").open() as fh:
            listed.update({r["dicom_id"]: r["path"] for r in csv.DictReader(fh)})
    defects = {sample.missing_scene_graph, sample.truncated_scene_graph, sample.negative_box[0]}
    resized = sample.gold_ids[0]
    truncated = next(i for i in sorted(listed) if i not in defects and i not in sample.gold_ids)
    for k, (dicom_id, path) in enumerate(sorted(listed.items())):
        width, height = sample.image_sizes[dicom_id]
        if dicom_id == resized:
            width, height = width // 2, height // 2
        jpg = base / "mimic" / path.replace(".dcm", ".jpg")
        _jpeg(jpg, width, height, k)
        if dicom_id == truncated:
            jpg.write_bytes(jpg.read_bytes()[:-400])
    return Fixture(sample, resized, truncated)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return write_fixture(tmp_path_factory.mktemp("imagenome"))


def _run(plan) -> tuple[dict, dict]:
    kept, rejects = run_plan(plan)
    return kept, {i: r.reason for i, r in rejects.items()}


def gold_plan(root: Path, mimic_root: Path, **options: object):
    return plan_of("imagenome", config="imagenome-gold", root=root, mimic_root=mimic_root, **options)


def silver_plan(root: Path, mimic_root: Path, **options: object):
    return plan_of("imagenome", config="imagenome-silver", root=root, mimic_root=mimic_root, **options)


def _gold_csv(sample: ImagenomeSample) -> list[dict[str, str]]:
    with (sample.root / "gold_dataset" / "gold_bbox_coordinate_annotations_1000images.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_gold_boxes_from_original_pixels(fixture: Fixture) -> None:
    sample = fixture.sample
    rows, rejects = _run(gold_plan(sample.root.parent, sample.mimic_root, image_size=64))
    assert rejects == {} and sorted(rows) == sorted(sample.gold_ids)
    expected = {(r["image_id"].removesuffix(".dcm"), r["bbox_name"]): r for r in _gold_csv(sample)}
    assert sum(len(r["regions"]) for r in rows.values()) == sample.gold_rows == len(expected)
    for dicom_id, row in rows.items():
        width, height = sample.image_sizes[dicom_id]
        assert (row["original_width"], row["original_height"]) == (width, height)  # metadata wins
        assert row["split"] == "test" and row["image_path"].endswith(f"{dicom_id}.jpg")
        for region in row["regions"]:
            raw = expected[(dicom_id, region["label"])]
            want = [float(raw["original_x1"]) / width, float(raw["original_y1"]) / height,
                    float(raw["original_x2"]) / width, float(raw["original_y2"]) / height]
            assert region["box"] == pytest.approx(want, abs=1e-9)
            assert region["reader"] == raw["annotator"] and region["phrase"] == region["label"]
    assert rows[fixture.resized]["_notes"] == ["image_size_differs_from_metadata"]


def _attribute_tsv(sample: ImagenomeSample) -> list[dict[str, str]]:
    with (sample.root / "gold_dataset" / "gold_attributes_relations_500pts_500studies1st.txt").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_gold_sentence_regions_from_the_attributes_file(fixture: Fixture) -> None:
    """Every TSV row, grouped by hand here per (row_id, bbox), is one attribute of one sentence region."""
    sample = fixture.sample
    rows, rejects = _run(gold_plan(sample.root.parent, sample.mimic_root, image_size=32))
    assert rejects == {} and sample.gold_attribute_ids and set(sample.gold_attribute_ids) < set(rows)
    expected: dict[str, dict[tuple[str, str], dict]] = {}
    for r in _attribute_tsv(sample):
        dicom_id = r["image_id"].removesuffix(".dcm")
        entry = expected.setdefault(dicom_id, {}).setdefault((r["row_id"], r["bbox"]), {
            "phrase": " ".join(r["sentence"].split()), "sentence": int(r["row_id"].split("|")[1]),
            "section": r["section"], "attributes": [], "relations": []})
        entry["attributes"].append(f"{r['categoryID']}|{r['context']}|{r['label_name']}")
        entry["relations"].append(int(r["relation"]))
    gold = {(r["image_id"].removesuffix(".dcm"), r["bbox_name"]): r for r in _gold_csv(sample)}
    for dicom_id, row in rows.items():
        want = expected.get(dicom_id, {})
        got = {(e["row_id"], e["label"]): e for e in row["sentence_regions"]}
        assert list(got) == list(want) and len(got) == len(row["sentence_regions"])
        width, height = sample.image_sizes[dicom_id]
        for key, entry in got.items():
            assert {k: entry[k] for k in want[key]} == want[key] and entry["source"] == "imagenome-gold"
            raw = gold.get((dicom_id, key[1]))
            if raw is None:  # a region the gold boxes do not have ("left chest wall", "mediastinum")
                assert entry["box"] is None and key[1] in ("left chest wall", "mediastinum")
            else:
                scale = (width, height, width, height)
                pixels = [float(raw[k]) for k in ("original_x1", "original_y1", "original_x2", "original_y2")]
                assert entry["box"] == pytest.approx([v / d for v, d in zip(pixels, scale, strict=True)])
    assert any("\n" in r["sentence"] for r in _attribute_tsv(sample))  # the file keeps report line breaks
    assert not any("\n" in e["phrase"] for r in rows.values() for e in r["sentence_regions"])
    assert all("_notes" not in r for r in rows.values() if r["id"] != fixture.resized)  # a clean file: no notes


def test_silver_rows_regions_and_defects(fixture: Fixture) -> None:
    sample = fixture.sample
    plan = silver_plan(sample.root, sample.mimic_root, image_size=64)
    rows, rejects = _run(plan)
    assert rejects == {sample.missing_scene_graph: "scene_graph_missing",
                       sample.truncated_scene_graph: "scene_graph_invalid",
                       fixture.truncated_jpeg: "image_truncated"}
    in_train_or_valid = [i for i in sample.avoid_ids if i in sample.splits["train"] + sample.splits["valid"]]
    assert in_train_or_valid and plan.records()[1] == {"gold_image_in_images_to_avoid": len(in_train_or_valid)}
    assert not set(in_train_or_valid) & set(rows)
    listed = {i for ids in sample.splits.values() for i in ids}
    assert set(rows) | set(rejects) == listed - set(in_train_or_valid)
    split_of = {i: {"valid": "validation"}.get(s, s) for s, ids in sample.splits.items() for i in ids}
    for dicom_id, row in rows.items():
        assert row["split"] == split_of[dicom_id] and row["view_position"] in ("PA", "AP")
        graph = json.loads((sample.root / SCENE_GRAPHS / f"{dicom_id}_SceneGraph.json").read_text())
        width, height = sample.image_sizes[dicom_id]
        objects = {o["bbox_name"]: o for o in graph["objects"]}
        for anatomy in row["anatomy"]:
            o = objects[anatomy["label"]]
            want = [o["original_x1"] / width, o["original_y1"] / height, o["original_x2"] / width,
                    o["original_y2"] / height]
            assert anatomy["box"] == pytest.approx(want, abs=1e-9)
        phrases = [(a["bbox_name"], " ".join(p.split())) for a in graph["attributes"] for p in a["phrases"]]
        assert [(r["label"], r["phrase"]) for r in row["regions"]] == phrases
        for region in row["regions"]:
            assert "\n" not in region["phrase"] and region["sentence"] is not None
            boxed = next((a["box"] for a in row["anatomy"] if a["label"] == region["label"]), None)
            assert region["box"] == boxed  # the object's box, or None (e.g. "left chest wall")
            assert all(a.count("|") == 2 for a in region["attributes"])
    assert any(r["box"] is None for row in rows.values() for r in row["regions"])
    defective = rows[sample.negative_box[0]]
    assert {(r["label"], r["reason"]) for r in defective["rejected_regions"]} == {
        (sample.negative_box[1], "box_out_of_bounds"), (sample.zero_area_box[1], "box_empty"),
        (sample.out_of_bounds_box[1], "box_out_of_bounds")}
    graph = json.loads((sample.root / SCENE_GRAPHS / f"{defective['id']}_SceneGraph.json").read_text())
    assert len(defective["anatomy"]) == len(graph["objects"]) - 3
    assert sum(len(r["rejected_regions"]) for r in rows.values()) == 3


def test_scene_graphs_read_from_zip(fixture: Fixture, tmp_path: Path) -> None:
    sample = fixture.sample
    root = tmp_path / "imagenome"
    shutil.copytree(sample.root / "silver_dataset" / "splits", root / "silver_dataset" / "splits")
    with zipfile.ZipFile(root / "silver_dataset" / "scene_graph.zip", "w") as zf:
        for path in sorted((sample.root / "silver_dataset" / "scene_graph").glob("*.json")):
            zf.write(path, f"scene_graph/{path.name}")
    folder_rows, folder_rejects = _run(silver_plan(sample.root, sample.mimic_root, image_size=32))
    zip_rows, zip_rejects = _run(silver_plan(root, sample.mimic_root, image_size=32))
    assert zip_rejects == folder_rejects
    assert {k: r["regions"] for k, r in zip_rows.items()} == {k: r["regions"] for k, r in folder_rows.items()}


def test_renamed_split_column_is_one_clear_error(fixture: Fixture, tmp_path: Path) -> None:
    root = tmp_path / "imagenome"
    shutil.copytree(fixture.sample.root / "silver_dataset" / "splits", root / "silver_dataset" / "splits")
    (root / "silver_dataset" / "scene_graph").mkdir()
    valid = root / "silver_dataset" / "splits" / "valid.csv"
    valid.write_text(valid.read_text().replace("dicom_id", "dicomid", 1))
    with pytest.raises(CxrdataError, match=r"^valid\.csv: missing column\(s\) dicom_id \(found: "):
        ImagenomeSilverSource(ImagenomeOptions(root=root, mimic_root=fixture.sample.mimic_root)).check()
    with pytest.raises(CxrdataError, match="pass --mimic-root"):
        ImagenomeSilverSource(ImagenomeOptions(root=fixture.sample.root, mimic_root=tmp_path / "nowhere")).check()


def test_one_region_struct_across_configs() -> None:
    structs = {name: load_schema(name).features["regions"] for name in
               ("vindr", "padchest-gr", "imagenome-gold", "imagenome-silver")}
    assert len({json.dumps(s, sort_keys=True) for s in structs.values()}) == 1
    assert load_schema("imagenome-silver").features["anatomy"] == structs["vindr"]
    rejected = {json.dumps(load_schema(n).features["rejected_regions"], sort_keys=True) for n in structs}
    assert len(rejected) == 1


def test_sources_are_two_configs(fixture: Fixture) -> None:
    sources = ENTRY.sources(ImagenomeOptions(root=fixture.sample.root.parent, mimic_root=fixture.sample.mimic_root))
    assert [s.config for s in sources] == ["imagenome-gold", "imagenome-silver"]
    assert all(s.root == fixture.sample.root for s in sources)


def _tsv_row(**cells: str | None) -> dict[str, str | None]:
    row = {"image_id": "a.dcm", "row_id": "5|0", "bbox": "left lung", "categoryID": "anatomicalfinding",
           "label_name": "atelectasis", "context": "yes", "relation": "1", "sentence": "Left  basilar\natelectasis.",
           "section": "finalreport"}
    return {**row, **cells}


def test_sentence_region_rules_on_hand_written_rows() -> None:
    """Each odd cell is kept, noted or skipped as the module docstring says; nothing becomes 'None'."""
    from cxrdata.sources.imagenome_attributes import sentence_regions

    rows = [
        _tsv_row(),
        _tsv_row(),  # verbatim repeat
        _tsv_row(label_name="pneumonia", categoryID="disease", context="no", relation="0"),
        _tsv_row(label_name="pneumonia", categoryID="disease", context="yes", relation="1"),  # conflict
        _tsv_row(label_name="edema", context="maybe"),  # neither yes nor no: skipped
        _tsv_row(label_name="effusion", relation="2"),  # kept, relation None
        _tsv_row(label_name="opacity", relation="0"),  # context and relation disagree: both kept as read
        _tsv_row(bbox=""),  # no region
        _tsv_row(row_id="5|2", sentence=None, bbox="left chest wall", categoryID="tubesandlines",
                 label_name="pacemaker"),
        _tsv_row(row_id="bad", label_name="nodule"),
    ]
    record: dict = {}
    out = sentence_regions(rows, {"left lung": [0.1, 0.2, 0.5, 0.9]}, record)
    assert out == [
        {"box": [0.1, 0.2, 0.5, 0.9], "phrase": "Left basilar atelectasis.", "label": "left lung",
         "source": "imagenome-gold", "sentence": 0, "section": "finalreport", "row_id": "5|0",
         "attributes": ["anatomicalfinding|yes|atelectasis", "anatomicalfinding|yes|effusion",
                        "anatomicalfinding|yes|opacity"], "relations": [1, None, 0]},
        {"box": None, "phrase": None, "label": "left chest wall", "source": "imagenome-gold", "sentence": 2,
         "section": "finalreport", "row_id": "5|2", "attributes": ["tubesandlines|yes|pacemaker"], "relations": [1]},
        {"box": [0.1, 0.2, 0.5, 0.9], "phrase": "Left basilar atelectasis.", "label": "left lung",
         "source": "imagenome-gold", "sentence": None, "section": "finalreport", "row_id": "bad",
         "attributes": ["anatomicalfinding|yes|nodule"], "relations": [1]},
    ]
    assert sorted(record["_notes"]) == sorted([
        "attribute_row_duplicate", "attribute_conflict", "attribute_context_invalid", "attribute_relation_invalid",
        "attribute_relation_context_differ", "attribute_row_invalid", "attribute_sentence_missing",
        "attribute_row_id_invalid"])
    only_relation = [{k: v for k, v in r.items() if k != "context"} for r in rows[:1]]
    assert sentence_regions(only_relation, {}, {})[0]["attributes"] == ["anatomicalfinding|yes|atelectasis"]
