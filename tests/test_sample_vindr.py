"""The synthetic VinDr-CXR tree has the real files, headers, quirks and the planted defects."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from cxrdata.sample.vindr import (
    IMAGE_LABELS_TEST,
    IMAGE_LABELS_TRAIN,
    LOCAL_LABELS,
    NO_FINDING,
    VindrSample,
    write_vindr_sample,
)

FORMATS_LOCAL = (
    "Aortic enlargement, Atelectasis, Calcification, Cardiomegaly, Clavicle fracture, Consolidation, Edema, "
    "Emphysema, Enlarged PA, ILD, Infiltration, Lung Opacity, Lung cavity, Lung cyst, Mediastinal shift, "
    "Nodule/Mass, Other lesion, Pleural effusion, Pleural thickening, Pneumothorax, Pulmonary fibrosis, Rib fracture"
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> VindrSample:
    return write_vindr_sample(tmp_path_factory.mktemp("vindr"), images=8, test_images=4, seed=0)


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_layout_and_headers(sample: VindrSample) -> None:
    ann = sample.root / "annotations"
    assert _rows(ann / "annotations_train.csv")[0] == [
        "image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"
    ]
    assert _rows(ann / "annotations_test.csv")[0] == [
        "image_id", "rad_ID", "class_name", "x_min", "y_min", "x_max", "y_max"
    ]
    train_header = _rows(ann / "image_labels_train.csv")[0]
    test_header = _rows(ann / "image_labels_test.csv")[0]
    assert train_header[:2] == ["image_id", "rad_id"] and len(train_header) == 30
    assert test_header[0] == "image_id" and "rad_id" not in test_header and len(test_header) == 29
    assert "Other diseases" in train_header and "Other disease" not in train_header
    assert "Other disease" in test_header and "Other diseases" not in test_header
    assert train_header[-8:] == [
        "Rib fracture", "Other lesion", "COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases",
        "No finding",
    ]
    assert tuple(train_header[2:]) == IMAGE_LABELS_TRAIN and tuple(test_header[1:]) == IMAGE_LABELS_TEST
    assert tuple(FORMATS_LOCAL.split(", ")) == LOCAL_LABELS
    for split, ids in (("train", sample.train_ids), ("test", sample.test_ids)):
        assert sorted(p.name for p in (sample.root / split).iterdir()) == sorted(f"{i}.dicom" for i in ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in (*sample.train_ids, *sample.test_ids))


def test_train_annotations(sample: VindrSample) -> None:
    _, rows = _rows(sample.root / "annotations" / "annotations_train.csv")
    assert len(rows) == sample.annotation_rows_train
    assert {r[2] for r in rows} <= {*LOCAL_LABELS, NO_FINDING}
    for image_id in sample.train_ids:
        readers = {r[1] for r in rows if r[0] == image_id}
        assert readers == set(sample.readers[image_id]) and len(readers) == 3
        assert all(re.fullmatch(r"R([1-9]|1[0-7])", r) for r in readers)
    no_finding = [r for r in rows if r[2] == NO_FINDING]
    assert len(no_finding) == sample.no_finding_rows_train
    assert all(r[3:] == ["", "", "", ""] for r in no_finding)
    boxes = [r for r in rows if r[2] != NO_FINDING]
    assert len(boxes) == sample.boxes_train > 0
    for r in boxes:
        assert all(re.fullmatch(r"\d+\.\d{1,2}", v) for v in r[3:]), r
    # normal images: three "No finding" rows, one per reader
    for image_id in sample.normal_ids:
        if image_id in sample.train_ids:
            assert sorted(r[2] for r in rows if r[0] == image_id) == [NO_FINDING] * 3
    # a reader disagreeing with the other two exists
    assert any(
        {r[2] == NO_FINDING for r in rows if r[0] == i} == {True, False} for i in sample.train_ids
    )


def test_boxes_inside_image_except_the_defect(sample: VindrSample) -> None:
    _, rows = _rows(sample.root / "annotations" / "annotations_train.csv")
    _, test_rows = _rows(sample.root / "annotations" / "annotations_test.csv")
    outside = []
    for r in [*rows, *test_rows]:
        if r[3] == "":
            continue
        width, height = sample.image_sizes[r[0]]
        x0, y0, x1, y1 = map(float, r[3:])
        assert x0 < x1 and y0 < y1
        if min(x0, y0) < 0 or x1 > width or y1 > height:
            outside.append((r[0], r[1], r[2]))
    assert outside == [sample.out_of_bounds]


def test_image_labels(sample: VindrSample) -> None:
    header, rows = _rows(sample.root / "annotations" / "image_labels_train.csv")
    assert len(rows) == 3 * len(sample.train_ids)
    for k, image_id in enumerate(sample.train_ids):  # three consecutive rows per image
        block = rows[3 * k : 3 * k + 3]
        assert [r[0] for r in block] == [image_id] * 3
        assert tuple(r[1] for r in block) == sample.readers[image_id]
    empty = [(r[0], r[1], header[j]) for r in rows for j, v in enumerate(r) if v == ""]
    assert empty == [sample.nan_label]
    assert all(v in ("0", "1") for r in rows for v in r[2:] if v != "")
    nf = header.index("No finding")
    for image_id in sample.normal_ids:
        assert all(r[nf] == "1" for r in rows if r[0] == image_id)
    test_header, test_rows = _rows(sample.root / "annotations" / "image_labels_test.csv")
    assert [r[0] for r in test_rows] == list(sample.test_ids)
    assert any(r[test_header.index("Other disease")] == "1" for r in test_rows)


def test_test_annotations_are_consensus(sample: VindrSample) -> None:
    _, rows = _rows(sample.root / "annotations" / "annotations_test.csv")
    assert len(rows) == sample.annotation_rows_test
    assert {r[0] for r in rows} == set(sample.test_ids)
    assert all(r[1] == "" for r in rows)
    assert sum(r[2] == NO_FINDING for r in rows) == sample.no_finding_rows_test
    assert sum(r[3] != "" for r in rows) == sample.boxes_test


@pytest.mark.parametrize("column", ["rad_id", None])
def test_test_rad_column_variants(tmp_path: Path, column: str | None) -> None:
    s = write_vindr_sample(tmp_path, images=4, test_images=1, test_rad_column=column)
    header = _rows(s.root / "annotations" / "annotations_test.csv")[0]
    expected = ["image_id", *([column] if column else []), "class_name", "x_min", "y_min", "x_max", "y_max"]
    assert header == expected


def _read(sample: VindrSample, image_id: str) -> pydicom.Dataset:
    split = "train" if image_id in sample.train_ids else "test"
    return pydicom.dcmread(sample.root / split / f"{image_id}.dicom", force=True)


def test_dicom_variants(sample: VindrSample) -> None:
    seen_ts, seen_photo, seen_bits = set(), set(), set()
    voi = window = rescale = 0
    for image_id, variant in sample.variants.items():
        ds = _read(sample, image_id)
        width, height = sample.image_sizes[image_id]
        assert (ds.Columns, ds.Rows) == (width, height)
        assert str(ds.PatientName).startswith("SYNTHETIC^") and ds.PatientID
        seen_photo.add(ds.PhotometricInterpretation)
        seen_bits.add(int(ds.BitsStored))
        voi += "VOILUTSequence" in ds
        window += "WindowCenter" in ds
        rescale += "RescaleSlope" in ds
        if variant.startswith("defect"):
            continue
        seen_ts.add(ds.file_meta.TransferSyntaxUID)
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16 and pixels.shape == (height, width)
        assert int(pixels.max()) <= (1 << int(ds.BitsStored)) - 1
        # stored values follow the photometric convention: lungs dark in MONOCHROME2, bright in MONOCHROME1
        lung = pixels[int(height * 0.4) : int(height * 0.55), int(width * 0.25) : int(width * 0.35)].mean()
        spine = pixels[int(height * 0.3) : int(height * 0.45), int(width * 0.48) : int(width * 0.52)].mean()
        assert (lung < spine) == (ds.PhotometricInterpretation == "MONOCHROME2"), variant
    assert {JPEG2000Lossless, RLELossless} <= seen_ts
    assert seen_photo == {"MONOCHROME1", "MONOCHROME2"}
    assert min(seen_bits) == 12 and max(seen_bits) == 16 and len(seen_bits) >= 4
    assert voi >= 1 and window >= 2 and rescale >= 2


def test_dicom_defects(sample: VindrSample) -> None:
    path = sample.root / "train" / f"{sample.missing_transfer_syntax}.dicom"
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM" and b"1.2.840.10008.1.2.1\x00" not in raw[:400]
    ds = pydicom.dcmread(path, force=True)
    assert "TransferSyntaxUID" not in ds.file_meta and "PixelData" in ds
    with pytest.raises(AttributeError, match="Transfer Syntax UID"):
        _ = ds.pixel_array
    empty = _read(sample, sample.no_pixel_data)
    assert "PixelData" not in empty and empty.Rows > 0


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path: Path, sample: VindrSample) -> None:
    again = write_vindr_sample(tmp_path / "again", images=8, test_images=4, seed=0)
    assert _digest(again.root) == _digest(sample.root)
    other = write_vindr_sample(tmp_path / "other", images=8, test_images=4, seed=1)
    assert other.train_ids != sample.train_ids


def test_faults_are_planted_in_the_csvs_and_nothing_else_changes(tmp_path: Path, sample: VindrSample) -> None:
    hostile = write_vindr_sample(tmp_path / "faults", images=8, test_images=4, seed=0, faults=True)
    faults = hostile.faults
    assert hostile.train_ids == sample.train_ids and hostile.faults and not sample.faults
    clean, dirty = _digest(sample.root), _digest(hostile.root)
    assert {k for k in clean if clean[k] != dirty[k]} == {
        "annotations/annotations_train.csv", "annotations/annotations_test.csv", "annotations/image_labels_train.csv"}
    _, rows = _rows(hostile.root / "annotations" / "annotations_train.csv")
    _, test_rows = _rows(hostile.root / "annotations" / "annotations_test.csv")
    header, labels = _rows(hostile.root / "annotations" / "image_labels_train.csv")
    repeated = [r for r in rows if rows.count(r) > 1]
    assert len(repeated) == 2 and repeated[0][0] == faults["annotation_row_duplicate"] and repeated[0][3]
    assert [r[0] for r in test_rows if test_rows.count(r) > 1] == [faults["test_annotation_row_duplicate"]] * 2
    assert [r[0] for r in labels if labels.count(r) > 1] == [faults["label_row_duplicate"]] * 2
    conflict = [r for r in labels if r[0] == faults["image_labels_conflict"] and r[1] == hostile.readers[r[0]][0]]
    assert len(conflict) == 2 and [header[j] for j in range(2, len(header)) if conflict[0][j] != conflict[1][j]] == [
        "COPD"]
    assert [(r[0], header[j]) for r in labels for j, v in enumerate(r) if v == "yes"] == [
        (faults["label_invalid"], "Edema")]
    assert faults["bad_id_dotdot"] == f"../test/{hostile.test_ids[0]}" and faults["bad_id_slash"].startswith("nested/")
    for bad in (faults["bad_id_dotdot"], faults["bad_id_slash"]):
        assert [r[0] for r in rows if r[0] == bad] == [bad] and [r[0] for r in labels if r[0] == bad] == [bad]
