"""The synthetic PadChest-GR tree has the real files, keys, columns, quirks and the planted defects."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrdata.sample.padchest_gr import MASTER_COLUMNS, PadchestGrSample, write_padchest_gr_sample

FORMATS_COLUMNS = [
    "StudyID", "ImageID", "label", "boxes_count", "extra_boxes_count", "locations", "prior_study",
    "progression_status", "prior_imageID", "sentence_en", "sentence_es", "study_is_benchmark",
    "study_is_validation", "split", "PatientID", "patient_is_benchmark", "PatientBirth", "PatientSex_DICOM",
    "StudyDate_DICOM", "StudyDate", "PatientAge", "label_group", "Year",
]
POSITIVE_KEYS = {"sentence_en", "sentence_es", "abnormal", "boxes", "extra_boxes", "labels", "locations", "progression"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> PadchestGrSample:
    return write_padchest_gr_sample(tmp_path_factory.mktemp("padchest_gr"), studies=12, seed=0)


@pytest.fixture(scope="module")
def records(sample: PadchestGrSample) -> list[dict]:
    return json.loads((sample.root / "grounded_reports_20240819.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def master(sample: PadchestGrSample) -> tuple[list[str], list[dict[str, str]]]:
    with (sample.root / "master_table.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_records(sample: PadchestGrSample, records: list[dict]) -> None:
    assert isinstance(records, list) and len(records) == len(sample.study_ids) == 12
    for r in records:
        assert list(r) == ["StudyID", "ImageID", "PreviousStudyID", "PreviousImageID", "findings"]
        assert re.fullmatch(r"[1-9]\d{37,38}", r["StudyID"])
        assert re.fullmatch(re.escape(r["StudyID"]) + r"_[a-z0-9]{6}\.png", r["ImageID"])
        assert (r["PreviousStudyID"] is None) == (r["PreviousImageID"] is None)
        if r["PreviousImageID"]:
            assert r["PreviousImageID"].startswith(r["PreviousStudyID"] + "_")
            assert (sample.root / "PadChest_GR_progression_prior_studies" / r["PreviousImageID"]).is_file()
    assert {len(r["StudyID"]) for r in records} == {38, 39}
    assert sample.prior_image_ids == {r["StudyID"]: r["PreviousImageID"] for r in records if r["PreviousImageID"]}


def test_sentences(sample: PadchestGrSample, records: list[dict]) -> None:
    sentences = [f for r in records for f in r["findings"]]
    negatives = [f for f in sentences if not f["abnormal"]]
    positives = [f for f in sentences if f["abnormal"]]
    assert len(negatives) == sample.negative_sentences > 0 and len(positives) == sample.positive_sentences > 0
    assert all(set(f) == {"sentence_en", "sentence_es", "abnormal"} for f in negatives)
    assert all(set(f) == POSITIVE_KEYS for f in positives)
    assert sum(not f["boxes"] for f in positives) == sample.ungrounded_positive_sentences > 0
    assert sum(len(f["boxes"]) for f in positives) == sample.boxes
    assert sum(len(f["extra_boxes"]) for f in positives) == sample.extra_boxes > 0
    assert any(f["boxes"] and not f["extra_boxes"] for f in positives)  # reader 2 did not draw
    assert any(len(f["extra_boxes"]) not in (0, len(f["boxes"])) for f in positives)  # different counts
    for f in positives:
        for box in f["boxes"] + f["extra_boxes"]:
            assert len(box) == 4 and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
            assert all(len(repr(v).split(".")[-1]) <= 8 for v in box)
    assert any(f["progression"] for f in positives)
    assert any("ó" in f["sentence_es"] for f in sentences)
    normal = [r["StudyID"] for r in records if not any(f["abnormal"] for f in r["findings"])]
    assert tuple(normal) == sample.normal_study_ids and normal


def test_master_table(sample: PadchestGrSample, records: list[dict], master: tuple) -> None:
    header, rows = master
    assert header == FORMATS_COLUMNS == list(MASTER_COLUMNS)
    expected = sum(len(f["labels"]) for r in records for f in r["findings"] if f["abnormal"])
    assert len(rows) == sample.master_rows == expected + len(sample.normal_study_ids)
    by_study = {r["StudyID"]: r for r in records}
    for row in rows:
        assert re.fullmatch(r"[1-9]\d{37,38}", row["PatientID"])
        assert row["ImageID"] == by_study[row["StudyID"]]["ImageID"]
        for column in ("prior_study", "study_is_benchmark", "study_is_validation", "patient_is_benchmark"):
            assert row[column] in ("True", "False")
        assert isinstance(ast.literal_eval(row["locations"]), list)
        assert row["split"] in ("train", "validation", "test")
        assert row["study_is_validation"] == str(row["split"] == "validation")
        assert row["StudyDate"] == row["Year"] == row["StudyDate_DICOM"][:4]
        assert int(row["PatientAge"]) == int(row["Year"]) - int(row["PatientBirth"])
        assert row["prior_imageID"] == (by_study[row["StudyID"]]["PreviousImageID"] or "")
        if row["label"] == "Normal":
            assert row["sentence_en"] == row["sentence_es"] == "" and row["locations"] == "[]"
            assert row["label_group"] == "Normal"
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert any(r["locations"].startswith("['") and "', '" in r["locations"] for r in rows)
    assert any(r["progression_status"] for r in rows)


def test_patient_disjoint_splits(sample: PadchestGrSample, master: tuple) -> None:
    _, rows = master
    split_of: dict[str, set[str]] = {}
    for row in rows:
        split_of.setdefault(row["PatientID"], set()).add(row["split"])
        assert sample.splits[row["StudyID"]] == row["split"]
        assert sample.patient_ids[row["StudyID"]] == row["PatientID"]
    assert all(len(s) == 1 for s in split_of.values())
    assert len(split_of) < len(sample.study_ids)  # some patients have several studies


def test_pngs(sample: PadchestGrSample) -> None:
    folder = sample.root / "PadChest_GR"
    for study_id, image_id in sample.image_ids.items():
        path = folder / image_id
        if image_id == sample.missing_png:
            assert not path.exists()
            continue
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        width, height = sample.image_sizes[image_id]
        assert pixels.shape == (height, width), study_id
        if image_id == sample.eight_bit_png:
            assert pixels.dtype == np.uint8
        else:
            assert pixels.dtype == np.uint16 and 255 < int(pixels.max()) <= 4095
    assert len(list(folder.iterdir())) == len(sample.image_ids) - 1


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path: Path, sample: PadchestGrSample) -> None:
    again = write_padchest_gr_sample(tmp_path / "again", studies=12, seed=0)
    assert _digest(again.root) == _digest(sample.root)
    other = write_padchest_gr_sample(tmp_path / "other", studies=12, seed=1)
    assert other.study_ids != sample.study_ids
