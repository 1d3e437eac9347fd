"""ChestX-ray14 builds end to end: plain, lofi-regions and synthetic prompts; loaded with `datasets`; the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records, read_rejects
from test_synth_prompts import _nearest_by_hand

import cxrdata
from cxrdata.cli import main
from cxrdata.io.schema import load_schema
from cxrdata.sample.chestxray14 import ChestXray14Sample, write_chestxray14_sample
from cxrdata.targets.box_text import boxes_to_text
from cxrdata.targets.synth_prompts import class_slug

SIZE = 128
CLASS_OF = {"Infiltrate": "Infiltration"}
WORD = {"Effusion": "pleural effusion"}  # the seed-003 pathology's name; other classes as themselves
PATHOLOGY = {"Effusion": "Pleural Effusion", "Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly",
             "Pneumonia": "Pneumonia", "Pneumothorax": "Pneumothorax"}


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@dataclass(frozen=True)
class Built:
    sample: ChestXray14Sample
    out: Path
    manifest: dict


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> ChestXray14Sample:
    return write_chestxray14_sample(tmp_path_factory.mktemp("cxr14") / "kaggle")


@pytest.fixture(scope="module")
def built(sample: ChestXray14Sample, tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("cxr14-build") / "out"
    build_with("chestxray14", out, root=sample.root, image_size=SIZE, max_reject_share=1)
    return Built(sample, out, json.loads((out / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LUT of the bundled Chest ImaGenome sample (`cxrdata lut build --sample`)."""
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    assert invoke("lut", "build", "--sample", "--out", path).exit_code == 0
    return path


def _canonical(xywh: tuple[float, float, float, float]) -> list[float]:
    x, y, w, h = xywh
    return [x / 1024, y / 1024, (x + w) / 1024, (y + h) / 1024]


def test_manifest_accounting(built: Built) -> None:
    sample, config = built.sample, built.manifest["configs"]["chestxray14"]
    train = sum(1 for s in sample.splits.values() if s == "train")
    assert config["counts"]["splits"] == {
        "train": {"read": train, "written": train - 1, "rejected": 1},  # the missing PNG
        "test": {"read": 6, "written": 6, "rejected": 0},
        "unknown": {"read": 1, "written": 0, "rejected": 1}}  # in neither list
    assert config["counts"]["notes"] == {"age_implausible": 1, "age_in_months": 1, "box_label_respelled": 1,
                                         "box_row_duplicate": 1, "png_source_rgba": 1}
    assert config["excluded"] == {"box_row_without_data_entry": 1}
    assert read_rejects(built.out, "chestxray14") == {sample.faults["missing_image"]: "image_missing",
                                                      sample.faults["unlisted"]: "split_missing"}
    assert config["versions"] == {"chestx-ray14": {"version": "2017",
                                                   "evidence": "labels read from Data_Entry_2017.csv"}}
    assert [i["path"] for i in built.manifest["inputs"]["chestxray14"]] == [
        "Data_Entry_2017.csv", "BBox_List_2017.csv", "train_val_list.txt", "test_list.txt"]


def test_loads_with_datasets(built: Built) -> None:
    ds = datasets.load_dataset("parquet", data_dir=str(built.out / "data" / "chestxray14"))
    assert sorted(ds) == ["test", "train"] and (ds["train"].num_rows, ds["test"].num_rows) == (7, 6)
    assert ds["test"].features == datasets.Features.from_dict(load_schema("chestxray14").features)
    rows = read_records(built.out, "chestxray14")
    for row in ds["test"]:
        assert row["image"].size == (SIZE, SIZE) and row["image"].mode == "L"
        written = built.sample.boxes.get(row["id"], [])
        assert [r["label"] for r in row["regions"]] == [CLASS_OF.get(lab, lab) for lab, _ in written]
        for region, (_, xywh) in zip(row["regions"], written, strict=True):
            assert region["box"] == pytest.approx(_canonical(xywh), abs=1e-6)  # float32 in the shards
        assert row["labels"] == rows[row["id"]]["labels"] and row["split"] == "test"


def test_lofi_regions_of_the_boxed_images(sample: ChestXray14Sample, tmp_path: Path) -> None:
    out = tmp_path / "lofi"
    result = build_with("chestxray14", out, recipe="lofi-regions", root=sample.root, boxed_only=True,
                        image_format="path", box_format="florence2")
    assert not result.problems
    rows = read_records(out, "chestxray14-lofi-regions")
    assert set(rows) == set(sample.boxes) - {sample.faults["unlisted"]}  # rejected: in no list
    for name, row in rows.items():
        groups: dict[str, list] = {}
        for label, xywh in dict.fromkeys(sample.boxes[name]):  # the repeated row counts once
            groups.setdefault(CLASS_OF.get(label, label), []).append(_canonical(xywh))
        assert [g["prompt"] for g in row["grounding"]] == [f'Detect all instances of "{p}".' for p in groups]
        assert [g["target"] for g in row["grounding"]] == [boxes_to_text(b, 1024, 1024, "florence2")
                                                           for b in groups.values()]
        assert [d["target"] for d in row["dense_captions"]] == list(groups)
    config = json.loads((out / "manifest.json").read_text())["configs"]["chestxray14-lofi-regions"]
    assert config["excluded"] == {"box_row_without_data_entry": 1,
                                  "image_without_box": len(sample.image_ids) - len(sample.boxes)}
    assert config["options"]["box_format"] == "florence2" and config["options"]["boxed_only"] is True
    schema, base = load_schema("chestxray14-lofi-regions"), load_schema("chestxray14")
    assert schema.names == [*base.names, "box_format", "grounding", "dense_captions"]


def test_lofi_regions_without_boxed_only_names_the_problem(sample: ChestXray14Sample, tmp_path: Path) -> None:
    result = build_with("chestxray14", tmp_path / "o", recipe="lofi-regions", root=sample.root, image_format="path")
    rejected = read_rejects(tmp_path / "o", "chestxray14-lofi-regions")
    unboxed = set(sample.image_ids) - set(sample.boxes) - {sample.faults["missing_image"]}
    assert {n for n, reason in rejected.items() if reason == "no_region"} == unboxed
    assert result.problems and "chestxray14-lofi-regions" in result.problems[0]


def test_synthetic_prompts(sample: ChestXray14Sample, lut_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "prompts"
    classes = "Atelectasis,Cardiomegaly,Effusion,Infiltrate,Mass,Nodule,Pneumonia,Pneumothorax"
    result = invoke("build", "chestxray14", "--root", sample.root, "--recipe", "vindr-prompts", "--lut", lut_file,
                    "--classes", classes, "--image-format", "path", "--out", out, "--workers", "1", "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_records(out, "chestxray14-prompts")
    lut_doc = json.loads(lut_file.read_text())
    order = list(lut_doc["locations"])
    expected: dict[str, list] = {}
    for name, boxes in sample.boxes.items():
        if sample.splits.get(name) == "test":
            for label, xywh in dict.fromkeys(boxes):
                expected.setdefault(f"{name}/{class_slug(CLASS_OF.get(label, label))}", []).append(_canonical(xywh))
    assert set(rows) == set(expected) and len(rows) == 8
    for rid, row in rows.items():
        class_name = row["class_name"]
        assert rid == f"{row['image_index']}/{class_slug(class_name)}"
        assert [b == pytest.approx(e, abs=1e-6) for b, e in zip(row["boxes"], expected[rid], strict=True)] == [
            True] * len(expected[rid])
        terms = [_nearest_by_hand(box, lut_doc)[0] for box in expected[rid]]
        assert row["locations"] == terms
        word = WORD.get(class_name, class_name.lower())
        assert row["prompt"] == " <and> ".join(sorted(set(terms), key=order.index)) + " " + word
        assert row["pathology"] == PATHOLOGY.get(class_name)
    assert "readers" not in load_schema("chestxray14-prompts").names
    config = json.loads((out / "manifest.json").read_text())["configs"]["chestxray14-prompts"]
    train = sum(1 for s in sample.splits.values() if s == "train")
    unboxed_test = sum(1 for n, s in sample.splits.items() if s == "test" and n not in sample.boxes)
    assert config["excluded"] == {"box_row_without_data_entry": 1, "image_in_other_split": train,
                                  "image_without_selected_class": unboxed_test}
    assert read_rejects(out, "chestxray14-prompts") == {sample.faults["unlisted"]: "split_missing"}
    assert config["options"]["classes"] == classes.replace("Infiltrate", "Infiltration").split(",")


def test_commands(sample: ChestXray14Sample, lut_file: Path, tmp_path: Path) -> None:
    result = invoke("build", "chestxray14", "--sample", "--out", tmp_path / "b", "--image-size", "64", "--quiet",
                    "--max-reject-share", "1")
    assert result.exit_code == 0, result.output
    assert len(read_records(tmp_path / "b", "chestxray14")) == 13
    result = invoke("build", "chestxray14", "--root", sample.root, "--recipe", "vindr-prompts", "--out",
                    tmp_path / "c", "--quiet")
    assert result.exit_code == 2 and "the vindr-prompts recipe needs --lut" in result.output
    result = invoke("build", "chestxray14", "--root", sample.root, "--recipe", "vindr-prompts", "--lut", lut_file,
                    "--classes", "Hernia", "--out", tmp_path / "d", "--quiet")
    assert result.exit_code == 2 and "'Hernia' is an image-level NIH ChestX-ray14 label without boxes" in \
        result.output
    result = invoke("doctor", "chestxray14", "--root", sample.root)
    assert result.exit_code == 1 and "doctor chestxray14" in result.output  # the planted defects are errors
    result = invoke("doctor", "chestxray14", "--root", tmp_path / "nope")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_doctor_names_each_defect(sample: ChestXray14Sample) -> None:
    found = {f.item: f for f in cxrdata.doctor("chestxray14", root=sample.root)}
    errors = {item for item, f in found.items() if f.level == "error"}
    assert errors == {"split lists: coverage", "images_001/images/, images_002/images/, images_003/images/: present"}
    assert found["split lists: coverage"].detail == ("14 of 15 Data_Entry images present; first missing: "
                                                     f"{sample.faults['unlisted']}")
    assert found["images_001/images/, images_002/images/, images_003/images/: present"].detail == (
        f"14 of 15 Data_Entry images present; first missing: {sample.faults['missing_image']}")
    assert found["BBox_List_2017.csv: labels"].detail == "1 'Infiltrate' stored as 'Infiltration'"
    assert found["BBox_List_2017.csv: box_row_without_data_entry"].level == "warning"
    assert found["Data_Entry_2017.csv: age_implausible"].detail == ("1 age(s) over 120, e.g. 412Y (stored as null, "
                                                                    "noted)")
    assert found["sample colour types"].detail.startswith("13 gray, 1 rgba")
    assert found["sample decode"].detail == "decodes: 14 of 14 sampled files"
