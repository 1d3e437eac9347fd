"""``cxrdata eval grounding`` on the MS-CXR sample build: the Oracle's constant and hand-made heatmaps."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records

from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.evaluate.grounding_eval import evaluate_grounding
from cxrdata.evaluate.grounding_records import load_records
from cxrdata.models.prediction_files import heatmap_name, write_heatmap
from cxrdata.sample.mimic import MimicSample

PAPER_ORDER = ["Pneumonia", "Pneumothorax", "Consolidation", "Atelectasis", "Edema", "Cardiomegaly", "Lung Opacity",
               "Pleural Effusion"]


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def ms_cxr(mimic_sample: MimicSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ms-cxr-build") / "out"
    build_with("ms-cxr", out, root=mimic_sample.root / "ms-cxr" / "1.1.0", mimic_root=mimic_sample.root,
               image_format="path")
    return out


def _mask(boxes: list[list[float]], width: int, height: int) -> np.ndarray:
    """Pixels whose centre lies in a box (written independently of cxrdata.evaluate)."""
    ys, xs = (np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]
    return mask


def _crop(width: int, height: int) -> tuple[slice, slice]:
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    return slice(top, top + side), slice(left, left + side)


def test_oracle_constant(ms_cxr: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    result = invoke("eval", "grounding", "--data", ms_cxr, "--oracle", "--out", out)
    assert result.exit_code == 0, result.output
    assert "Pneumonia (N=" in result.output and "Average" in result.output and "mIoU (%)" in result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["class"] for r in rows] == [*PAPER_ORDER, "Average"]
    records = read_records(ms_cxr, "ms-cxr")
    assert int(rows[-1]["n"]) == len(records)
    for row in rows:
        assert float(row["miou"]) == pytest.approx(0.674, abs=0.004), row  # the Oracle's geometric constant
        assert 2.0 < float(row["cnr"]) < 2.4
        if row["class"] != "Average":
            assert float(row["miou_ci_low"]) <= float(row["miou"]) <= float(row["miou_ci_high"])
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["method"] == "oracle" and doc["n_resamples"] == 10_000 and len(doc["records"]) == len(records)
    assert doc["skipped_no_box"] == []


def test_box_heatmaps_exact(ms_cxr: Path, tmp_path: Path) -> None:
    """Heatmap = 1 on the ground truth inside the centre crop, 0 elsewhere: IoU = |mask ∩ crop| / |mask|."""
    records = read_records(ms_cxr, "ms-cxr")
    expected: dict[str, list[float]] = {}
    inside = 0
    for rid, row in records.items():
        w, h = row["original_width"], row["original_height"]
        mask = _mask(row["boxes"], w, h)
        rows, cols = _crop(w, h)
        crop = mask[rows, cols]
        write_heatmap(tmp_path / "maps", rid, crop.astype(np.float32))
        iou = crop.sum() / mask.sum() if crop.any() and not crop.all() else 0.0
        expected.setdefault(row["category"], []).append(float(iou))
        inside += iou == 1.0
    assert inside >= 3  # some boxes lie wholly inside the crop: mIoU exactly 1 there
    report = evaluate_grounding(ms_cxr, heatmaps=tmp_path / "maps", n_resamples=200)
    for row in report.rows:
        assert row.miou.mean == pytest.approx(np.mean(expected[row.name]), abs=1e-12), row.name
    per_record = {s.id: s for s in report.scores}
    for rid, row in records.items():
        w, h = row["original_width"], row["original_height"]
        crop = _mask(row["boxes"], w, h)[_crop(w, h)]
        if crop.any() and not crop.all():
            assert per_record[rid].cnr == math.inf  # constant inside and outside: a perfect contrast
    assert report.average_miou == pytest.approx(np.mean([np.mean(v) for v in expected.values()]), abs=1e-12)


def test_low_resolution_heatmap(ms_cxr: Path, tmp_path: Path) -> None:
    """A 2x2 map (top half 1) is resized by nearest neighbour: IoU is that of the top half of the crop."""
    records = read_records(ms_cxr, "ms-cxr")
    rid, row = sorted(records.items())[0]
    w, h = row["original_width"], row["original_height"]
    for other in records:
        write_heatmap(tmp_path, other, np.array([[1.0, 1.0], [0.0, 0.0]]))
    report = evaluate_grounding(ms_cxr, heatmaps=tmp_path, classes=[row["category"]], n_resamples=100)
    mask = _mask(row["boxes"], w, h)
    pred = np.zeros_like(mask)
    rows, cols = _crop(w, h)
    side = min(w, h)
    pred[rows.start:rows.start - (-side // 2), cols] = True  # cv2 nearest: source row = floor(dst * 2 / side)
    iou = (pred & mask).sum() / (pred | mask).sum()
    score = next(s for s in report.scores if s.id == rid)
    assert score.miou == pytest.approx(iou, abs=1e-12)


def test_heatmap_layout_names(tmp_path: Path) -> None:
    assert heatmap_name("abc-1/3") == "abc-1_3.npy"
    assert heatmap_name("50a4/pleural-effusion") == "50a4_pleural-effusion.npy"
    path = write_heatmap(tmp_path, "x/y", np.ones((4, 4)))
    assert path.name == "x_y.npy" and np.load(path).dtype == np.float32
    with pytest.raises(ValueError, match="square"):
        write_heatmap(tmp_path, "z", np.ones((4, 5)))


def test_errors_are_clear(ms_cxr: Path, tmp_path: Path) -> None:
    records = read_records(ms_cxr, "ms-cxr")
    result = invoke("eval", "grounding", "--data", ms_cxr, "--heatmaps", tmp_path, "--out", tmp_path / "t.csv")
    assert result.exit_code == 2 and f"{len(records)} of {len(records)} heatmaps missing" in result.output
    result = invoke("eval", "grounding", "--data", ms_cxr, "--out", tmp_path / "t.csv")
    assert result.exit_code == 2 and "--oracle" in result.output
    result = invoke("eval", "grounding", "--data", ms_cxr, "--oracle", "--classes", "Pneumonia,Fracture")
    assert result.exit_code == 2 and "unknown class(es) 'Fracture'" in result.output
    result = invoke("eval", "grounding", "--data", ms_cxr, "--oracle", "--split", "nope")
    assert result.exit_code == 2 and "no split 'nope'" in result.output
    for rid in records:
        write_heatmap(tmp_path / "maps", rid, np.zeros((3, 3)))
    np.save(tmp_path / "maps" / heatmap_name(sorted(records)[0]), np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(CxrdataError, match="square 2D array"):
        evaluate_grounding(ms_cxr, heatmaps=tmp_path / "maps")


def _fake_config(folder: Path, boxes: list[list[float]], category: str | None = "Edema") -> Path:
    folder.mkdir(parents=True)
    table = pa.table({"id": ["r/0"], "split": ["test"], "category": [category], "boxes": [boxes],
                      "original_width": [100], "original_height": [80]})
    pq.write_table(table, folder / "test-00000-of-00001.parquet")
    return folder


def test_bad_boxes_and_classes(tmp_path: Path) -> None:
    bad = _fake_config(tmp_path / "a" / "data" / "ms-cxr-loc", [[0.1, 0.1, 1.2, 0.5]])
    with pytest.raises(CxrdataError, match=r"not inside \[0, 1\]"):
        load_records(tmp_path / "a")
    result = invoke("eval", "grounding", "--data", bad, "--oracle")
    assert result.exit_code == 2 and "r/0" in result.output
    _fake_config(tmp_path / "b", [[0.1, 0.1, 0.5, 0.5]], category=None)
    with pytest.raises(CxrdataError, match="no class"):
        load_records(tmp_path / "b")
    empty = _fake_config(tmp_path / "c" / "data" / "x", [])
    with pytest.raises(CxrdataError, match="no record with a box"):
        load_records(empty)
    _fake_config(tmp_path / "c" / "data" / "y", [[0.1, 0.1, 0.5, 0.5]])
    with pytest.raises(CxrdataError, match="several configs"):
        load_records(tmp_path / "c")
    assert load_records(tmp_path / "c", config="y").records[0].width == 100
