"""``cxrdata lut build|show|plot`` on the synthetic Chest ImaGenome sample, checked against the gold CSVs by hand."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cxrdata.anatomy.lut import location_mapping, read_lut
from cxrdata.anatomy.lut_plot import figure_size
from cxrdata.cli import main
from cxrdata.sample.imagenome import ImagenomeSample, write_imagenome_sample
from cxrdata.sources.imagenome_gold import GOLD_BOXES, GOLD_SCALING, read_gold_boxes
from cxrdata.vocabulary import locations


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def imagenome(tmp_path_factory: pytest.TempPathFactory) -> ImagenomeSample:
    return write_imagenome_sample(tmp_path_factory.mktemp("imagenome"), subjects=6, seed=0)


@pytest.fixture(scope="module")
def lut_file(imagenome: ImagenomeSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lut") / "lut.json"
    result = invoke("lut", "build", "--imagenome", imagenome.root.parent, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _gold_by_hand(root: Path, grid: int = 512, divisor: float = 6.0) -> dict[str, list[list[float]]]:
    """bbox_name -> per-box (mu_x, mu_y, sigma_x, sigma_y), from the CSVs with the csv module."""
    with (root / GOLD_SCALING).open() as fh:
        sizes = {}
        for row in csv.DictReader(fh):
            top, bottom, left, right, ratio = (float(row[k]) for k in ("top", "bottom", "left", "right", "ratio"))
            sizes[row["image_id"].removesuffix(".dcm")] = ((224 - left - right) / ratio, (224 - top - bottom) / ratio)
    stats: dict[str, list[list[float]]] = {}
    with (root / GOLD_BOXES).open() as fh:
        for row in csv.DictReader(fh):
            w, h = sizes[row["image_id"].removesuffix(".dcm")]
            x1, x2 = float(row["original_x1"]) / w * grid, float(row["original_x2"]) / w * grid
            y1, y2 = float(row["original_y1"]) / h * grid, float(row["original_y2"]) / h * grid
            stats.setdefault(row["bbox_name"], []).append(
                [(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / divisor, (y2 - y1) / divisor])
    return stats


def test_scaling_file_gives_original_sizes(imagenome: ImagenomeSample) -> None:
    gold = read_gold_boxes(imagenome.root)
    assert gold.sizes == {i: imagenome.image_sizes[i] for i in imagenome.gold_ids}
    assert gold.rows == imagenome.gold_rows and len(gold.boxes) == gold.rows and not gold.problems


def test_build_gives_all_terms_with_counts(imagenome: ImagenomeSample, lut_file: Path) -> None:
    lut = read_lut(lut_file)
    assert lut.terms == locations() and len(lut.terms) == 27
    assert lut.grid == 512 and lut.sigma_divisor == 6.0 and lut.skipped_boxes == 0
    per_image = len(imagenome.gold_ids)
    stats = _gold_by_hand(imagenome.root)
    for term, entry in lut.entries.items():
        comps = location_mapping()[term]["components"]
        assert entry.counts == tuple(per_image * (len(c["span"]) if "span" in c else 1) for c in comps), term
        for comp, params in zip(comps, entry.components, strict=True):
            if "box" in comp:  # an average of per-box statistics
                np.testing.assert_allclose(params, np.mean(stats[comp["box"]], axis=0), rtol=0, atol=1e-4)
    left_lower = np.mean(stats["left lower lung zone"], axis=0)
    for term in ("left lower", "left pleural", "left base", "bibasilar"):
        np.testing.assert_allclose(lut.params(term)[0], left_lower, atol=1e-4)
    doc = json.loads(lut_file.read_text())
    assert doc["format"] == "cxrdata.gaussian_lut" and list(doc["locations"]) == list(locations())


def test_build_reports_what_went_in(imagenome: ImagenomeSample, tmp_path: Path) -> None:
    result = invoke("lut", "build", "--imagenome", imagenome.root, "--out", tmp_path / "l.json",
                    "--grid", "256", "--sigma-divisor", "4")
    assert result.exit_code == 0, result.output
    assert f"{len(imagenome.gold_ids)} images" in result.output
    lut = read_lut(tmp_path / "l.json")
    assert lut.grid == 256 and lut.sigma_divisor == 4.0
    right = np.mean(_gold_by_hand(imagenome.root, 256, 4.0)["right lung"], axis=0)
    np.testing.assert_allclose(lut.params("right")[0], right, atol=1e-4)


def test_build_sample(tmp_path: Path) -> None:
    result = invoke("lut", "build", "--sample", "--out", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    assert len(read_lut(tmp_path / "s.json").terms) == 27


def test_show(lut_file: Path) -> None:
    result = invoke("lut", "show", lut_file)
    assert result.exit_code == 0, result.output
    for term in ("bibasilar", "left costophrenic", "cardiomegaly", "pulmonary", "lingular"):
        assert term in result.output
    assert "cardiac silhouette" in result.output and "left lung + right lung" in result.output


def test_plot(lut_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "lut.png"
    result = invoke("lut", "plot", lut_file, "--out", out)
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out).convert("RGB"))
    assert (image.shape[1], image.shape[0]) == figure_size(27) == (1400, 800)
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # drawn, not blank
    invoke("lut", "plot", lut_file, "--out", tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == out.read_bytes()  # deterministic


def test_malformed_lut_is_one_clear_line(lut_file: Path, tmp_path: Path) -> None:
    doc = json.loads(lut_file.read_text())
    doc["locations"]["left lower"]["components"][0][2] = -1.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    for command in (("show", bad), ("plot", bad, "--out", tmp_path / "x.png")):
        result = invoke("lut", *command)
        assert result.exit_code == 2 and "malformed Gaussian LUT" in result.output and "left lower" in result.output
    (tmp_path / "text.json").write_text("not json")
    result = invoke("lut", "show", tmp_path / "text.json")
    assert result.exit_code == 2 and "not a JSON Gaussian LUT" in result.output


def test_missing_gold_file(tmp_path: Path) -> None:
    result = invoke("lut", "build", "--imagenome", tmp_path, "--out", tmp_path / "l.json")
    assert result.exit_code == 2 and "gold_bbox_coordinate_annotations_1000images.csv" in result.output
    result = invoke("lut", "build", "--out", tmp_path / "l.json")
    assert result.exit_code == 2 and "--imagenome" in result.output


def test_unusable_gold_rows_are_counted(imagenome: ImagenomeSample, tmp_path: Path) -> None:
    root = tmp_path / "gold"
    (root / "gold_dataset").mkdir(parents=True)
    (root / GOLD_SCALING).write_text((imagenome.root / GOLD_SCALING).read_text())
    lines = (imagenome.root / GOLD_BOXES).read_text().splitlines()
    header = lines[0].split(",")
    bad = next(i for i, line in enumerate(lines) if ",left lung," in line)
    cells = next(csv.reader([lines[bad]]))
    cells[header.index("original_x2")] = ""
    lines[bad] = ",".join(f'"{c}"' if "," in c else c for c in cells)
    (root / GOLD_BOXES).write_text("\n".join(lines) + "\n")
    gold = read_gold_boxes(root)
    assert gold.problems == Counter({"coordinate_malformed": 1}) and len(gold.boxes) == gold.rows - 1
    result = invoke("lut", "build", "--imagenome", root, "--out", tmp_path / "l.json")
    assert result.exit_code == 0 and "coordinate_malformed" in result.output
    assert read_lut(tmp_path / "l.json").entries["left"].counts == (len(imagenome.gold_ids) - 1,)
