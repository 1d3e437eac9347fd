"""`cxrdata stats` and the manifest's `statistics`: counts per split x label (x location), box quantiles and
rejects per reason, each checked against the same numbers computed here from the shards with plain Python."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with
from PIL import Image

from cxrdata.anatomy.lut import build_lut, write_lut
from cxrdata.api import bundled_root
from cxrdata.cli import main
from cxrdata.inspect.plots import DPI, SPLIT_COLOURS, WIDTH_INCHES
from cxrdata.io.stats import BOX_MEASURES, NO_LOCATION, QUANTILES, statistics
from cxrdata.sample.chest import anatomy_boxes


def rows_of(out: Path, config: str) -> list[dict]:
    return [row for path in sorted((out / "data" / config).glob("*.parquet"))
            for row in pq.read_table(path, columns=[n for n in pq.read_schema(path).names if n != "image"]).to_pylist()]


def rejects_of(out: Path, config: str) -> Counter:
    return Counter((r["split"], r["reason"]) for path in sorted((out / "rejects" / config).glob("*.parquet"))
                   for r in pq.read_table(path).to_pylist())


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def loc_out(mimic_sample, tmp_path_factory) -> Path:
    """MS-CXR-loc (prompts, locations, boxes, Gaussians) built from the session's MIMIC sample."""
    root = tmp_path_factory.mktemp("stats-loc")
    boxes = [item for w, h in ((512, 512), (400, 500)) for item in anatomy_boxes(w, h).items()]
    write_lut(build_lut(boxes), root / "lut.json")
    result = invoke("build", "ms-cxr", "--root", str(mimic_sample.mscxr_csv["1.1.0"].parent), "--mimic-root",
                    str(mimic_sample.root), "--recipe", "ms-cxr-loc", "--extractor", "rules", "--lut",
                    str(root / "lut.json"), "--image-size", "128", "--out", str(root / "out"), "--workers", "1",
                    "--quiet")
    assert result.exit_code == 0, result.output
    return root / "out"


@pytest.fixture(scope="module")
def vindr_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stats-vindr") / "out"
    build_with("vindr", out, root=bundled_root("vindr"), image_size=128, max_reject_share=1)
    return out


def test_pathology_location_counts(loc_out):
    stats = statistics(loc_out, "ms-cxr-loc")
    expected: Counter = Counter()
    boxes: Counter = Counter()
    for row in rows_of(loc_out, "ms-cxr-loc"):
        for location in dict.fromkeys(row["locations"] or [NO_LOCATION]):
            expected[(row["split"], row["pathology"], location)] += 1
            boxes[(row["split"], row["pathology"], location)] += len(row["boxes"])
    got = {(r["split"], r["pathology"], r["location"]): r["records"] for r in stats["groups"]["rows"]}
    assert stats["groups"]["by"] == ["pathology", "location"]
    assert got == dict(expected) and sum(got.values()) >= 26
    assert {(r["split"], r["pathology"], r["location"]): r["boxes"] for r in stats["groups"]["rows"]} == dict(boxes)
    assert stats["records"] == dict(Counter(r["split"] for r in rows_of(loc_out, "ms-cxr-loc")))


def test_region_label_counts_and_rejects(vindr_out):
    stats = statistics(vindr_out, "vindr")
    records: Counter = Counter()
    boxes: Counter = Counter()
    for row in rows_of(vindr_out, "vindr"):
        for label in {r["label"] for r in row["regions"]}:
            records[(row["split"], label)] += 1
        for region in row["regions"]:
            boxes[(row["split"], region["label"])] += region["box"] is not None
    assert {(r["split"], r["label"]): r["records"] for r in stats["groups"]["rows"]} == dict(records)
    assert {(r["split"], r["label"]): r["boxes"] for r in stats["groups"]["rows"]} == dict(boxes)
    rejected = rejects_of(vindr_out, "vindr")
    assert rejected == Counter({("train", "dicom_no_pixels"): 1})  # the sample's DICOM without pixel data
    assert {(r["split"], r["reason"]): r["records"] for r in stats["rejects"]["rows"]} == dict(rejected)
    manifest = json.loads((vindr_out / "manifest.json").read_text())["configs"]["vindr"]
    assert stats["rejects"]["by_reason"] == manifest["counts"]["rejects_by_reason"] == {"dicom_no_pixels": 1}


def test_box_quantiles(loc_out, vindr_out):
    for out, config, key in ((loc_out, "ms-cxr-loc", "boxes"), (vindr_out, "vindr", "regions")):
        stats = statistics(out, config)["boxes"]
        rows = rows_of(out, config)
        found = ([b for r in rows for b in r["boxes"]] if key == "boxes"
                 else [g["box"] for r in rows for g in r["regions"] if g["box"] is not None])
        x0, y0, x1, y1 = np.array(found, dtype=np.float64).T
        measures = {"width": x1 - x0, "height": y1 - y0, "area": (x1 - x0) * (y1 - y0),
                    "center_x": (x0 + x1) / 2, "center_y": (y0 + y1) / 2}
        assert stats["count"] == len(found)
        assert stats["per_split"] == dict(Counter(r["split"] for r in rows for b in
                                                  (r["boxes"] if key == "boxes" else
                                                   [g for g in r["regions"] if g["box"] is not None])))
        for measure in BOX_MEASURES:
            values = measures[measure]
            assert stats["measures"][measure]["mean"] == pytest.approx(values.mean(), abs=1e-6)
            for name, q in QUANTILES.items():
                assert stats["measures"][measure][name] == pytest.approx(np.quantile(values, q), abs=1e-6), measure


def test_chexpert_positives_of_mimic(mimic_build):
    out = mimic_build.out
    stats = statistics(out, "mimic")
    expected: Counter = Counter()
    for row in rows_of(out, "mimic"):
        for label, value in row["chexpert"].items():
            if value == 1.0:
                expected[(row["split"], label)] += 1
    assert stats["groups"]["by"] == ["chexpert_positive"]
    assert {(r["split"], r["chexpert_positive"]): r["records"] for r in stats["groups"]["rows"]} == dict(expected)
    assert stats["boxes"]["count"] == 0
    assert {(r["split"], r["reason"]): r["records"] for r in stats["rejects"]["rows"]} == dict(rejects_of(out, "mimic"))


def test_manifest_statistics_are_the_shards(loc_out, vindr_out):
    for out, config in ((loc_out, "ms-cxr-loc"), (vindr_out, "vindr")):
        manifest = json.loads((out / "manifest.json").read_text())["configs"][config]
        assert manifest["statistics"] == statistics(out, config)


def _colours(path: Path) -> set[tuple[int, int, int]]:
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    return {tuple(int(v) for v in c) for c in np.unique(pixels, axis=0)}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_stats_cli_tables_and_plots(vindr_out, tmp_path):
    result = invoke("stats", str(vindr_out), "--plot", str(tmp_path / "plots"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for needle in ("vindr: records per split x label", "Consolidation", "dicom_no_pixels", "center_x", "p95"):
        assert needle in text
    stats = statistics(vindr_out, "vindr")
    counts, boxes = tmp_path / "plots" / "vindr-counts.png", tmp_path / "plots" / "vindr-boxes.png"
    labels = {r["label"] for r in stats["groups"]["rows"]}
    assert Image.open(counts).size == (round(WIDTH_INCHES * DPI), round((1.5 + 0.22 * len(labels)) * DPI))
    assert Image.open(boxes).size == (round(WIDTH_INCHES * 1.5 * DPI), round(WIDTH_INCHES * DPI))
    assert (tmp_path / "plots" / "vindr-rejects.png").is_file()
    # the bars carry the colours of the splits the config has, and none of the others
    colours = _colours(counts)
    assert _rgb(SPLIT_COLOURS["train"]) in colours and _rgb(SPLIT_COLOURS["test"]) in colours
    assert _rgb(SPLIT_COLOURS["validation"]) not in colours


def test_stats_cli_unknown_config(vindr_out):
    result = invoke("stats", str(vindr_out), "--config", "nope")
    assert result.exit_code == 2 and "no config 'nope'" in result.output and "vindr" in result.output


def test_plot_distributions_and_box_density(vindr_out, tmp_path):
    from cxrdata.inspect.plots import DENSITY_GRID, box_density
    from cxrdata.io.stats import config_stats

    result = invoke("stats", str(vindr_out), "--plot", str(tmp_path / "plots"))
    assert result.exit_code == 0, result.output
    for name in ("splits", "counts", "classes", "boxes", "density", "rejects"):
        path = tmp_path / "plots" / f"vindr-{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(path).format == "PNG", name
    boxes = [g["box"] for r in rows_of(vindr_out, "vindr") for g in r["regions"] if g["box"] is not None]
    expected = np.zeros((DENSITY_GRID, DENSITY_GRID), dtype=np.int64)
    for x0, y0, x1, y1 in boxes:  # the centre's cell, by hand
        column = min(int((x0 + x1) / 2 * DENSITY_GRID), DENSITY_GRID - 1)
        row = min(int((y0 + y1) / 2 * DENSITY_GRID), DENSITY_GRID - 1)
        expected[row, column] += 1
    stats = config_stats(vindr_out / "data" / "vindr", None)
    density = box_density(stats.boxes["center_x"].to_numpy(), stats.boxes["center_y"].to_numpy())
    assert density.sum() == len(boxes) == statistics(vindr_out, "vindr")["boxes"]["count"] > 0
    np.testing.assert_array_equal(density, expected)
    edge = box_density(np.array([0.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.0]), grid=4)
    assert edge.sum() == 3 and edge[3, 0] == edge[3, 3] == edge[0, 2] == 1  # a centre on the far edge still counts
