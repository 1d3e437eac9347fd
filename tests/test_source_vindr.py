"""The VinDr-CXR reader and the DICOM image stage on the synthetic sample, stage by stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cxrdata_testing import plan_of, run_plan

from cxrdata.errors import CxrdataError
from cxrdata.sample.vindr import VindrSample, write_vindr_sample
from cxrdata.sources.vindr import VindrOptions, VindrSource


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> VindrSample:
    return write_vindr_sample(tmp_path_factory.mktemp("vindr"), images=8, test_images=4, seed=0)


def _run(sample: VindrSample | Path, **options: object) -> tuple[dict, dict]:
    root = sample.root if isinstance(sample, VindrSample) else sample
    return run_plan(plan_of("vindr", root=root, **{"image_size": 64, **options}))


def test_rows_and_rejects(sample: VindrSample) -> None:
    rows, rejects = _run(sample)
    assert {k: r.reason for k, r in rejects.items()} == {sample.no_pixel_data: "dicom_no_pixels"}
    assert set(rows) == set(sample.train_ids + sample.test_ids) - {sample.no_pixel_data}
    inferred = rows[sample.missing_transfer_syntax]
    assert "dicom_transfer_syntax_inferred" in inferred["_notes"]
    assert inferred["dicom"]["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    for image_id, row in rows.items():
        assert (row["original_width"], row["original_height"]) == sample.image_sizes[image_id]
        assert max(row["image_width"], row["image_height"]) == 64
        assert row["image"]["bytes"].startswith(b"\xff\xd8") and row["image"]["path"] == f"{image_id}.jpg"
        assert set(row["dicom"]) == {"PhotometricInterpretation", "BitsStored", "TransferSyntaxUID"}


def test_every_reader_kept(sample: VindrSample) -> None:
    rows, _ = _run(sample)
    kept = sum(len(r["regions"]) for i, r in rows.items() if i in sample.train_ids)
    dropped = sum(len(r["rejected_regions"]) for r in rows.values())
    with (sample.root / "annotations" / "annotations_train.csv").open() as fh:
        lost = sum(1 for line in fh if line.startswith(sample.no_pixel_data) and ",,,," not in line)
    assert dropped == 1 and kept + dropped + lost == sample.boxes_train  # lost: went with the rejected image
    oob_id, reader, label = sample.out_of_bounds
    [rejected] = rows[oob_id]["rejected_regions"]
    assert (rejected["label"], rejected["reader"], rejected["reason"]) == (label, reader, "box_out_of_bounds")
    assert rows[oob_id]["_notes"].count("region_box_out_of_bounds") == 1
    for image_id in sample.train_ids:
        if image_id == sample.no_pixel_data:
            continue
        row = rows[image_id]
        assert {r["reader"] for r in row["regions"]} | set(row["no_finding_readers"]) <= set(sample.readers[image_id])
        assert [lab["reader"] for lab in row["image_labels"]] == list(sample.readers[image_id])
        for region in row["regions"]:
            assert all(0.0 <= v <= 1.0 for v in region["box"]) and region["phrase"] == region["label"]
            assert region["source"] == "vindr-cxr" and region["sentence"] is None
    for image_id in sample.test_ids:
        row = rows[image_id]
        assert {r["reader"] for r in row["regions"]} <= {"consensus"}
        assert [lab["reader"] for lab in row["image_labels"]] == ["consensus"]
    normal = [i for i in sample.normal_ids if i in sample.train_ids]
    assert all(len(rows[i]["no_finding_readers"]) == 3 and not rows[i]["regions"] for i in normal)
    test_labels = [lab for i in sample.test_ids for lab in rows[i]["image_labels"][0]["labels"]]
    assert "Other diseases" in test_labels and "Other disease" not in test_labels


def test_fused_view_beside_raw(sample: VindrSample) -> None:
    rows, _ = _run(sample, fuse="wbf", iou=0.1)
    raw, _ = _run(sample)
    for image_id, row in rows.items():
        assert row["regions"] == raw[image_id]["regions"]
        if image_id in sample.train_ids and row["regions"]:
            assert row["fused_regions"] and len(row["fused_regions"]) <= len(row["regions"])
            assert all(0 < f["score"] <= 1 for f in row["fused_regions"])
    assert all(r["fused_regions"] == [] for r in raw.values())


@pytest.mark.parametrize("column", ["rad_id", None])
def test_test_reader_column_variants(tmp_path: Path, column: str | None) -> None:
    sample = write_vindr_sample(tmp_path, images=4, test_images=1, test_rad_column=column)
    rows, _ = _run(sample)
    assert {r["reader"] for r in rows[sample.test_ids[0]]["regions"]} <= {"consensus"}


def test_storage_modes(sample: VindrSample) -> None:
    """path: an absolute string path, header only (nothing decoded); max_side 0: full-size lossless PNG."""
    paths, path_rejects = _run(sample, image_format="path")
    full, _ = _run(sample, image_size=0, image_format="jpeg")
    assert {k: r.reason for k, r in path_rejects.items()} == {sample.no_pixel_data: "dicom_no_pixels"}
    for image_id, row in paths.items():
        assert row["image"] == str((sample.root / row["image_path"]).absolute())  # a plain path: not an Image
        assert (row["image_width"], row["image_height"]) == sample.image_sizes[image_id]
        assert row["dicom"] == full[image_id]["dicom"]
        assert row["regions"] == full[image_id]["regions"]
    for image_id, row in full.items():
        assert row["image"]["bytes"].startswith(b"\x89PNG") and row["image"]["path"] == f"{image_id}.png"
        pixels = cv2.imdecode(np.frombuffer(row["image"]["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels.dtype == np.uint8 and (pixels.shape[1], pixels.shape[0]) == sample.image_sizes[image_id]
        assert (row["image_width"], row["image_height"]) == sample.image_sizes[image_id]


def test_not_a_dicom_is_a_reject_and_the_rest_goes_on(sample: VindrSample, tmp_path: Path) -> None:
    root = tmp_path / "vindr"
    shutil.copytree(sample.root, root)
    bad = sample.test_ids[0]
    (root / "test" / f"{bad}.dicom").write_text("<html>Access denied</html>\n" * 20)
    truncated = root / "test" / f"{sample.test_ids[1]}.dicom"
    truncated.write_bytes(truncated.read_bytes()[:2000])
    for mode in ("jpeg", "path"):
        rows, rejects = _run(root, image_format=mode)
        assert rejects[bad].reason == "dicom_invalid", mode
        assert rejects[sample.test_ids[1]].reason in ("dicom_invalid", "dicom_decode_failed", "image_truncated")
        assert len(rows) == len(sample.train_ids) + len(sample.test_ids) - 3


def test_bad_csv_is_one_clear_error(sample: VindrSample, tmp_path: Path) -> None:
    root = tmp_path / "vindr"
    shutil.copytree(sample.root / "annotations", root / "annotations")
    (root / "train").mkdir()
    (root / "test").mkdir()
    csv = root / "annotations" / "annotations_train.csv"
    csv.write_text(csv.read_text().replace("x_min", "xmin", 1))
    with pytest.raises(CxrdataError, match=r"^annotations_train\.csv: missing column\(s\) x_min \(found: "):
        VindrSource(VindrOptions(root=root)).check()
    with pytest.raises(CxrdataError, match="'fuse' must be one of none, union, wbf"):
        plan_of("vindr", root=root, fuse="nms")
