"""A VinDr-CXR build of the synthetic sample: accounting, typed shards, boxes, display and privacy."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records

from cxrdata.boxes import to_xyxy_pixels
from cxrdata.cli import main
from cxrdata.sample import _synth
from cxrdata.sample.vindr import VindrSample, write_vindr_sample

SIZE = 128


@dataclass(frozen=True)
class Built:
    sample: VindrSample
    out: Path
    manifest: dict


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("vindr-build")
    sample = write_vindr_sample(base / "vindr", images=8, test_images=4, seed=0)
    out = base / "out"
    build_with("vindr", out, root=sample.root, image_size=SIZE, fuse="wbf", max_reject_share=1)
    return Built(sample, out, json.loads((out / "manifest.json").read_text()))


def _csv_boxes(sample: VindrSample) -> dict[tuple[str, str, str], list[float]]:
    """(image_id, reader, class_name) -> pixel box, from both annotation CSVs (test reader: consensus)."""
    boxes = {}
    for name in ("annotations_train.csv", "annotations_test.csv"):
        with (sample.root / "annotations" / name).open() as fh:
            for row in csv.DictReader(fh):
                if row["x_min"]:
                    reader = row.get("rad_id") or row.get("rad_ID") or "consensus"
                    key = (row["image_id"], reader, row["class_name"])
                    assert key not in boxes
                    boxes[key] = [float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max")]
    return boxes


def test_manifest_accounting(built: Built) -> None:
    sample, config = built.sample, built.manifest["configs"]["vindr"]
    counts = config["counts"]
    assert counts["splits"] == {
        "test": {"read": len(sample.test_ids), "written": len(sample.test_ids), "rejected": 0},
        "train": {"read": len(sample.train_ids), "written": len(sample.train_ids) - 1, "rejected": 1},
    }
    assert counts["rejects_by_reason"] == {"dicom_no_pixels": 1}
    assert counts["notes"] == {"dicom_transfer_syntax_inferred": 1, "label_missing": 1, "region_box_out_of_bounds": 1}
    assert config["options"] == {"image_size": SIZE, "image_format": "jpeg", "fuse": "wbf", "iou": 0.1,
                                 "dicom_display": "stretch"}
    assert "  - dicom_display: `stretch`" in (built.out / "README.md").read_text()
    rejects = [r for p in (built.out / "rejects" / "vindr").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert [(r["record_id"], r["split"], r["reason"]) for r in rejects] == [
        (sample.no_pixel_data, "train", "dicom_no_pixels")]


def test_shards_load_typed_and_boxes_match_the_csv(built: Built) -> None:
    sample = built.sample
    ds = datasets.load_dataset("parquet", data_dir=str(built.out / "data" / "vindr"))
    assert sorted(ds) == ["test", "train"]
    assert isinstance(ds["train"].features["image"], datasets.Image)
    assert ds["train"].features["regions"].feature["box"] == datasets.List(datasets.Value("float32"), length=4)
    expected = _csv_boxes(sample)
    lost = {k for k in expected if k[0] == sample.no_pixel_data} | {sample.out_of_bounds}
    seen = set()
    for split in ds:
        for row in ds[split]:
            image = row["image"]
            assert image.size == (row["image_width"], row["image_height"]) and max(image.size) == SIZE
            assert (row["original_width"], row["original_height"]) == sample.image_sizes[row["id"]]
            for region in row["regions"]:
                key = (row["id"], region["reader"], region["label"])
                pixels = to_xyxy_pixels(region["box"], row["original_width"], row["original_height"])
                assert pixels == pytest.approx(expected[key], abs=0.01)
                seen.add(key)
    assert seen == set(expected) - lost


def test_monochrome1_is_shown_with_dark_air(built: Built) -> None:
    """Lungs (air) darker than the spine in every stored image, MONOCHROME1 and MONOCHROME2 alike."""
    rows = read_records(built.out, "vindr")
    photometric = {r["dicom"]["PhotometricInterpretation"] for r in rows.values()}
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}
    ds = datasets.load_dataset("parquet", data_dir=str(built.out / "data" / "vindr"), split="train+test")
    for row in ds:
        pixels = np.asarray(row["image"].convert("L"), dtype=np.float32)
        anatomy = _synth.anatomy(row["original_width"], row["original_height"])

        def mean(name: str, pixels: np.ndarray = pixels, anatomy: dict = anatomy) -> float:
            x0, y0, x1, y1 = (round(v) for v in to_xyxy_pixels(anatomy[name], pixels.shape[1], pixels.shape[0]))
            return float(pixels[y0:y1, x0:x1].mean())

        lungs = (mean("right mid lung zone") + mean("left mid lung zone")) / 2
        assert lungs + 20 < mean("spine"), (row["id"], row["dicom"]["PhotometricInterpretation"])


def test_no_patient_tag_anywhere(built: Built) -> None:
    sample = built.sample
    secrets = ["SYNTHETIC^PATIENT", "SYNTHETIC HOSPITAL", "PatientName", "PatientID", "PatientBirthDate"]
    secrets += [f"VD{int(i[:6], 16):08d}" for i in sample.train_ids + sample.test_ids]
    texts = []
    for path in sorted(built.out.rglob("*")):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            texts.append(str(table.schema.metadata) + str(table.to_pylist()))
        elif path.is_file():
            texts.append(path.read_text())
    dump = "\n".join(texts)
    assert sample.train_ids[0] in dump  # the dump does hold the data
    assert [s for s in secrets if s in dump] == []


def test_cli_sample_data_then_build(tmp_path: Path) -> None:
    runner = CliRunner()
    raw, out = tmp_path / "raw", tmp_path / "out"
    result = runner.invoke(main, ["sample-data", "vindr", "--out", str(raw), "--seed", "1"], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote 8 train and 4 test DICOMs" in result.output
    args = ["build", "vindr", "--root", str(raw), "--out", str(out), "--fuse", "union", "--iou", "0.2",
            "--image-size", "64", "--dicom-display", "window", "--workers", "1", "--quiet"]
    assert runner.invoke(main, args, catch_exceptions=False).exit_code == 0
    config = json.loads((out / "manifest.json").read_text())["configs"]["vindr"]
    assert config["options"] == {"image_size": 64, "image_format": "jpeg", "fuse": "union", "iou": 0.2,
                                 "dicom_display": "window"}
    again = runner.invoke(main, [*args[:-5], "--workers", "1", "--quiet"])  # same build, default display
    assert again.exit_code == 2 and "options.dicom_display" in again.output  # an output-changing option
    for command in (["build", "vindr"], ["synth-prompts", "vindr"]):  # both build VinDr images
        assert "--dicom-display [stretch|window]" in runner.invoke(main, [*command, "--help"]).output
    assert any(row["fused_regions"] for row in read_records(out, "vindr").values())
    missing = runner.invoke(main, ["build", "vindr", "--root", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code == 2 and missing.output.startswith("error: VinDr-CXR root")
    assert len(missing.output.strip().splitlines()) <= 2
