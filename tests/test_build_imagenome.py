"""A Chest ImaGenome build (gold + silver: two configs, one build) on the MIMIC-CXR-JPG sample."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with

from cxrdata.cli import main
from cxrdata.imaging.raster import decode_jpeg, resize_longest_side
from cxrdata.sample.imagenome import ImagenomeSample, write_imagenome_sample
from cxrdata.sample.mimic import MimicSample

SIZE = 128
SPLITS = {"train": "train", "valid": "validation", "test": "test"}


@dataclass(frozen=True)
class Built:
    sample: ImagenomeSample
    mimic: MimicSample
    out: Path
    manifest: dict


@pytest.fixture(scope="module")
def built(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("imagenome-build")
    sample = write_imagenome_sample(base, mimic_root=mimic_sample.root, seed=0)
    out = base / "out"
    build_with("imagenome", out, root=base, mimic_root=mimic_sample.root, image_size=SIZE, max_reject_share=1)
    return Built(sample, mimic_sample, out, json.loads((out / "manifest.json").read_text()))


def _image_reason(mimic: MimicSample, dicom_id: str) -> str | None:
    return {mimic.truncated_jpeg: "image_truncated", mimic.corrupt_jpeg: "image_corrupt"}.get(dicom_id)


def expected_silver(built: Built) -> tuple[dict[str, str], dict[str, str]]:
    """(dicom_id -> split of every silver record, dicom_id -> reject reason), in stage order."""
    sample = built.sample
    splits = {i: SPLITS[s] for s, ids in sample.splits.items() for i in ids
              if s == "test" or i not in sample.avoid_ids}
    rejects = {}
    for dicom_id in splits:
        if dicom_id == sample.missing_scene_graph:
            rejects[dicom_id] = "scene_graph_missing"
        elif dicom_id == sample.truncated_scene_graph:
            rejects[dicom_id] = "scene_graph_invalid"
        elif reason := _image_reason(built.mimic, dicom_id):
            rejects[dicom_id] = reason
    return splits, rejects


def _rejects(out: Path, config: str) -> dict[str, str]:
    rows = [r for p in (out / "rejects" / config).glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    return {r["record_id"]: r["reason"] for r in rows}


def test_manifest_accounting(built: Built) -> None:
    sample, configs = built.sample, built.manifest["configs"]
    assert list(configs) == ["imagenome-gold", "imagenome-silver"]
    gold_rejects = {i: r for i in sample.gold_ids if (r := _image_reason(built.mimic, i))}
    n_gold = len(sample.gold_ids)
    assert configs["imagenome-gold"]["counts"]["splits"] == {
        "test": {"read": n_gold, "written": n_gold - len(gold_rejects), "rejected": len(gold_rejects)}}
    assert _rejects(built.out, "imagenome-gold") == gold_rejects

    splits, rejects = expected_silver(built)
    read, bad = Counter(splits.values()), Counter(splits[i] for i in rejects)
    silver = configs["imagenome-silver"]
    assert silver["counts"]["splits"] == {s: {"read": read[s], "written": read[s] - bad[s], "rejected": bad[s]}
                                          for s in read}
    assert silver["counts"]["rejects_by_reason"] == dict(sorted(Counter(rejects.values()).items()))
    assert _rejects(built.out, "imagenome-silver") == rejects
    excluded = [i for i in sample.avoid_ids if i in sample.splits["train"] + sample.splits["valid"]]
    assert silver["excluded"] == {"gold_image_in_images_to_avoid": len(excluded)} and excluded
    assert silver["counts"]["notes"] == {"region_box_empty": 1, "region_box_out_of_bounds": 2}
    card = (built.out / "README.md").read_text()
    assert "config_name: imagenome-gold" in card and "config_name: imagenome-silver" in card


def test_gold_boxes_equal_original_pixels_over_size(built: Built) -> None:
    sample = built.sample
    with (sample.root / "gold_dataset" / "gold_bbox_coordinate_annotations_1000images.csv").open() as fh:
        gold = {(r["image_id"].removesuffix(".dcm"), r["bbox_name"]): r for r in csv.DictReader(fh)}
    ds = datasets.load_dataset("parquet", data_dir=str(built.out / "data" / "imagenome-gold"), split="test")
    n = 0
    for row in ds:
        width, height = sample.image_sizes[row["id"]]
        assert (row["original_width"], row["original_height"]) == (width, height)
        for region in row["regions"]:
            raw = gold[(row["id"], region["label"])]
            want = [float(raw["original_x1"]) / width, float(raw["original_y1"]) / height,
                    float(raw["original_x2"]) / width, float(raw["original_y2"]) / height]
            assert region["box"] == pytest.approx(want, abs=1e-6)
            n += 1
    assert n == sum(1 for k in gold if k[0] in set(ds["id"]))


def test_silver_loads_by_config_name_with_images_and_boxes(built: Built) -> None:
    sample = built.sample
    ds = datasets.load_dataset(str(built.out), "imagenome-silver")
    splits, rejects = expected_silver(built)
    assert {i: s for s in ds for i in ds[s]["id"]} == {i: s for i, s in splits.items() if i not in rejects}
    row = next(r for r in ds["train"] if r["anatomy"])
    graph = json.loads((sample.root / "silver_dataset" / "scene_graph" / f"{row['id']}_SceneGraph.json").read_text())
    width, height = sample.image_sizes[row["id"]]
    objects = {o["bbox_name"]: o for o in graph["objects"]}
    names = ds["train"].features["anatomy"].feature["label"]  # a ClassLabel of the 36 bbox_names
    for anatomy in row["anatomy"]:
        o = objects[names.int2str(anatomy["label"])]
        assert anatomy["box"] == pytest.approx(
            [o["original_x1"] / width, o["original_y1"] / height, o["original_x2"] / width, o["original_y2"] / height],
            abs=1e-6)
    jpeg = (built.mimic.root / row["image_path"]).read_bytes()
    expected = resize_longest_side(decode_jpeg(jpeg, max_side=SIZE).pixels, SIZE)
    stored = np.asarray(row["image"].convert("L"), dtype=np.int16)
    assert stored.shape == expected.shape and np.abs(stored - expected).mean() < 1.5
    phrases = {(r["label"], r["phrase"]) for r in row["regions"]}
    assert phrases == {(a["bbox_name"], " ".join(p.split())) for a in graph["attributes"] for p in a["phrases"]}


def test_cli_sample_data_then_build(tmp_path: Path) -> None:
    runner = CliRunner()
    raw, out = tmp_path / "raw", tmp_path / "out"
    result = runner.invoke(main, ["sample-data", "imagenome", "--out", str(raw)], catch_exceptions=False)
    assert result.exit_code == 0 and "gold images" in result.output
    args = ["build", "imagenome", "--root", str(raw), "--out", str(out), "--image-format", "path", "--quiet"]
    missing = runner.invoke(main, args)
    assert missing.exit_code == 2 and missing.output.strip() == "error: give --root and --mimic-root, or --sample"
    args += ["--mimic-root", str(raw / "mimic-cxr-jpg"), "--workers", "1"]
    assert runner.invoke(main, args, catch_exceptions=False).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["configs"]) == ["imagenome-gold", "imagenome-silver"]
    assert manifest["configs"]["imagenome-silver"]["counts"]["rejects_by_reason"]["scene_graph_missing"] == 1


def test_gold_sentence_regions_load_typed_and_hold_every_tsv_row(built: Built) -> None:
    sample = built.sample
    path = sample.root / "gold_dataset" / "gold_attributes_relations_500pts_500studies1st.txt"
    with path.open(newline="") as fh:
        tsv = list(csv.DictReader(fh, delimiter="\t"))
    ds = datasets.load_dataset(str(built.out), "imagenome-gold", split="test")
    feature = ds.features["sentence_regions"].feature
    assert feature["box"] == datasets.List(datasets.Value("float32"), length=4)
    assert feature["relations"] == datasets.List(datasets.Value("int8"))
    written = set(ds["id"])
    expected = [r for r in tsv if r["image_id"].removesuffix(".dcm") in written]
    assert expected  # the sample's first-study gold images were written
    got = {row["id"]: [(e["row_id"], e["label"], a, rel) for e in row["sentence_regions"]
                       for a, rel in zip(e["attributes"], e["relations"], strict=True)] for row in ds}
    want: dict[str, list] = {i: [] for i in written}
    for r in expected:  # in file order: one sentence region per (row_id, bbox), its attributes in order
        want[r["image_id"].removesuffix(".dcm")].append(
            (r["row_id"], r["bbox"], f"{r['categoryID']}|{r['context']}|{r['label_name']}", int(r["relation"])))
    assert got == {i: sorted(v, key=lambda t: [x[:2] for x in v].index(t[:2])) for i, v in want.items()}
