"""The synthetic PadChest-GR tree has the real files, keys, columns, quirks and the planted defects, in both real
variants of the JSON (records with and without StudyID/ImageID) and both folder layouts."""

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
STUDY_ID = r"[1-9]\d{37,38}|[1-9]\d{36}-2"
VARIANTS = {"with-ids": {"ids": True}, "without-ids-nested": {"ids": False, "nested": True}}


@pytest.fixture(scope="module", params=list(VARIANTS))
def sample(request, tmp_path_factory: pytest.TempPathFactory) -> PadchestGrSample:
    return write_padchest_gr_sample(tmp_path_factory.mktemp("padchest_gr"), studies=12, seed=0,
                                    **VARIANTS[request.param])


@pytest.fixture(scope="module")
def records(sample: PadchestGrSample) -> list[dict]:
    return json.loads((sample.root / "grounded_reports_20240819.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def good(sample: PadchestGrSample, records: list[dict]) -> list[dict]:
    """The good studies' records (the defect studies come after them), with their ids put back when absent."""
    return [{"StudyID": s, "ImageID": sample.image_ids[s], **r}
            for s, r in zip(sample.study_ids, records, strict=False)]


@pytest.fixture(scope="module")
def master(sample: PadchestGrSample) -> tuple[list[str], list[dict[str, str]]]:
    with (sample.root / "master_table.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_records(sample: PadchestGrSample, records: list[dict], good: list[dict]) -> None:
    assert isinstance(records, list) and len(records) == sample.entries and len(good) == len(sample.study_ids) == 12
    keys = ["StudyID", "ImageID"] * sample.ids + ["PreviousStudyID", "PreviousImageID", "findings"]
    assert all(list(r) == keys for r in records[:12])
    for r in good:
        assert re.fullmatch(STUDY_ID, r["StudyID"])
        assert re.fullmatch(re.escape(r["StudyID"]) + r"_[a-z0-9]{6}\.png", r["ImageID"])
        assert (r["PreviousStudyID"] is None) == (r["PreviousImageID"] is None)
        if r["PreviousImageID"]:
            assert (r["PreviousImageID"].startswith(r["PreviousStudyID"] + "_")
                    or re.fullmatch(r"216840111366964\d{30}_\d\d-\d{3}-\d{3}\.png", r["PreviousImageID"]))
            assert (sample.root / sample.prior_dir / r["PreviousImageID"]).is_file()
    assert {len(r["StudyID"]) for r in good} == {38, 39}  # 37 digits + "-2" is 39 long too
    assert sum(r["StudyID"].endswith("-2") for r in good) == 1
    assert any(len(p.split("_")[0]) == 45 for p in sample.prior_image_ids.values())  # an original PadChest id
    assert sample.prior_image_ids == {r["StudyID"]: r["PreviousImageID"] for r in good if r["PreviousImageID"]}


def test_sentences(sample: PadchestGrSample, good: list[dict]) -> None:
    sentences = [f for r in good for f in r["findings"]]
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
    normal = [r["StudyID"] for r in good if not any(f["abnormal"] for f in r["findings"])]
    assert tuple(normal) == sample.normal_study_ids and normal


def test_master_table(sample: PadchestGrSample, good: list[dict], master: tuple) -> None:
    header, rows = master
    assert header == FORMATS_COLUMNS == list(MASTER_COLUMNS)
    good_rows = [r for r in rows if r["StudyID"] in sample.image_ids]
    expected = sum(len(f["labels"]) for r in good for f in r["findings"] if f["abnormal"])
    assert len(good_rows) == expected + len(sample.normal_study_ids) and len(rows) == sample.master_rows
    assert list(dict.fromkeys(r["StudyID"] for r in good_rows)) == list(sample.study_ids)  # the records' order
    by_study = {r["StudyID"]: r for r in good}
    for row in good_rows:
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
        finding = next((f for f in by_study[row["StudyID"]]["findings"] if f["sentence_en"] == row["sentence_en"]),
                       None)
        if finding and row["StudyID"] != sample.mismatched_study:  # counts match the record's boxes
            assert (int(row["boxes_count"]), int(row["extra_boxes_count"])) == (len(finding["boxes"]),
                                                                                len(finding["extra_boxes"]))
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
    assert any(r["locations"].startswith("['") and "', '" in r["locations"] for r in rows)
    assert any(r["progression_status"] for r in rows)


def test_planted_defects(sample: PadchestGrSample, records: list[dict], master: tuple) -> None:
    defects = records[12:]
    findings = [f for r in defects for f in r.get("findings", [])]
    assert sum("findings" not in r for r in defects) == 1
    assert {"false"} == {f["abnormal"] for f in findings if isinstance(f["abnormal"], str)}
    assert "cardiomegaly" in [f.get("labels") for f in findings]
    assert 5 in [f.get("boxes") for f in findings]
    _, rows = master
    assert any(r["StudyID"] == "../../evil" and r["ImageID"].startswith("../../evil_") for r in rows)
    if sample.ids:
        image_ids = [r["ImageID"] for r in records]
        repeated = {i for i in image_ids if image_ids.count(i) > 1}
        copies = {i: [r for r in records if r["ImageID"] == i] for i in repeated}
        assert sorted(all(c == cs[0] for c in cs) for cs in copies.values()) == [False, True]
        assert sample.duplicate_entries == 1
    else:
        assert sample.duplicate_entries == 0 and not any("ImageID" in r or "StudyID" in r for r in records)
    mismatched = [r for r in rows if r["StudyID"] == sample.mismatched_study and r["sentence_en"]]
    record = next(r for r, s in zip(records, sample.study_ids, strict=False) if s == sample.mismatched_study)
    boxes = {f["sentence_en"]: len(f["boxes"]) for f in record["findings"] if f["abnormal"]}
    assert any(int(r["boxes_count"]) == boxes[r["sentence_en"]] + 1 for r in mismatched)
    assert set(sample.rejected.values()) >= {"image_missing", "png_not_16bit", "findings_missing", "bad_value",
                                             "unsafe_id"}


def test_patient_disjoint_splits(sample: PadchestGrSample, master: tuple) -> None:
    _, rows = master
    split_of: dict[str, set[str]] = {}
    for row in (r for r in rows if r["StudyID"] in sample.image_ids):
        split_of.setdefault(row["PatientID"], set()).add(row["split"])
        assert sample.splits[row["StudyID"]] == row["split"]
        assert sample.patient_ids[row["StudyID"]] == row["PatientID"]
    assert all(len(s) == 1 for s in split_of.values())
    assert len(split_of) < len(sample.study_ids)  # some patients have several studies


def test_pngs(sample: PadchestGrSample) -> None:
    folder = sample.root / sample.image_dir
    assert sample.image_dir == ("PadChest_GR" if sample.ids else "Padchest_GR_files/PadChest_GR")
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
    defect_pngs = len(list(folder.iterdir())) - (len(sample.image_ids) - 1)
    assert defect_pngs == (6 if sample.ids else 4)  # every defect study but the one whose id climbs out
    prior = sample.root / sample.prior_dir
    assert prior.is_dir() and len(list(prior.glob("*.png"))) == len(sample.prior_image_ids)
    assert sample.ids or sample.prior_dir.count("PadChest_GR_progression_prior_studies") == 2


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path: Path, sample: PadchestGrSample) -> None:
    variant = {"ids": sample.ids, "nested": not sample.ids}
    again = write_padchest_gr_sample(tmp_path / "again", studies=12, seed=0, **variant)
    assert _digest(again.root) == _digest(sample.root)
    other = write_padchest_gr_sample(tmp_path / "other", studies=12, seed=1, **variant)
    assert other.study_ids != sample.study_ids
