"""``cxrdata synth-prompts vindr``: every prompt recomputed by hand from the annotation CSVs and the LUT JSON."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import read_records

from cxrdata.anatomy.lut import write_lut
from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.sample.imagenome import write_imagenome_sample
from cxrdata.sample.vindr import VindrSample, write_vindr_sample
from cxrdata.sources.imagenome_gold import build_gold_lut
from cxrdata.sources.vindr import BOX_CLASSES
from cxrdata.targets.prompts import build_prompt
from cxrdata.targets.synth_prompts import class_slug

ALL_CLASSES = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
    "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
    "Mediastinal shift", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "Rib fracture",
)


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@dataclass(frozen=True)
class Built:
    sample: VindrSample
    lut: Path
    out: Path
    manifest: dict


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("imagenome")
    write_imagenome_sample(base, subjects=6, seed=0)
    path = base / "lut.json"
    write_lut(build_gold_lut(base).lut, path)
    return path


@pytest.fixture(scope="module")
def built(lut_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("vindr")
    sample = write_vindr_sample(base / "vindr", images=6, test_images=12, seed=0)
    _add_mirrored_box(sample)
    out = base / "out"
    result = invoke("synth-prompts", "vindr", "--root", sample.root, "--lut", lut_file, "--out", out,
                    "--classes", ",".join(ALL_CLASSES), "--split", "train", "--split", "test",
                    "--image-format", "path", "--workers", "1", "--quiet")
    assert result.exit_code == 0, result.output
    return Built(sample, lut_file, out, json.loads((out / "manifest.json").read_text()))


def _add_mirrored_box(sample: VindrSample) -> None:
    """A second consensus box of the first test Pleural effusion, mirrored left-right: a two-location prompt."""
    path = sample.root / "annotations" / "annotations_test.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    row = next(r for r in rows if r["class_name"] == "Pleural effusion")
    width = sample.image_sizes[row["image_id"]][0]
    x_min, x_max = width - float(row["x_max"]), width - float(row["x_min"])
    with path.open("a") as fh:
        fh.write(f"{row['image_id']},,Pleural effusion,{x_min:.2f},{row['y_min']},{x_max:.2f},{row['y_max']}\n")


def _boxes_by_hand(sample: VindrSample) -> dict[str, list[tuple[list[float], str]]]:
    """record id -> [(canonical box, reader)] in CSV order; far-out boxes dropped, small overshoots clipped."""
    pairs: dict[str, list[tuple[list[float], str]]] = {}
    for name in ("annotations_train.csv", "annotations_test.csv"):
        with (sample.root / "annotations" / name).open() as fh:
            for row in csv.DictReader(fh):
                if row["class_name"] == "No finding":
                    continue
                w, h = sample.image_sizes[row["image_id"]]
                box = [float(row["x_min"]) / w, float(row["y_min"]) / h, float(row["x_max"]) / w,
                       float(row["y_max"]) / h]
                rid = f"{row['image_id']}/{class_slug(row['class_name'])}"
                entry = pairs.setdefault(rid, [])
                if min(box) >= -0.02 and max(box) <= 1.02:
                    reader = row.get("rad_id") or row.get("rad_ID") or "consensus"
                    entry.append(([min(max(v, 0.0), 1.0) for v in box], reader))
    return pairs


def _nearest_by_hand(box: list[float], lut_doc: dict) -> tuple[str, float]:
    """The one-component LUT entry with the least W2² = |mu - mu'|² + |sigma - sigma'|²; first listed wins ties."""
    grid, divisor = lut_doc["grid"], lut_doc["sigma_divisor"]
    x0, y0, x1, y1 = (v * grid for v in box)
    g = ((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / divisor, (y1 - y0) / divisor)
    best, best_d = "", float("inf")
    for term, entry in lut_doc["locations"].items():  # written in vocabulary order
        if len(entry["components"]) != 1:
            continue
        d = sum((a - b) ** 2 for a, b in zip(g, entry["components"][0], strict=True))
        if d < best_d:
            best, best_d = term, d
    return best, best_d


def test_every_prompt_by_hand(built: Built) -> None:
    lut_doc = json.loads(built.lut.read_text())
    order = list(lut_doc["locations"])
    expected = _boxes_by_hand(built.sample)
    rows = read_records(built.out, "vindr-prompts")
    assert len(rows) >= 10
    rejected_images = {built.sample.no_pixel_data}
    assert set(rows) == {rid for rid in expected if rid.split("/")[0] not in rejected_images}
    multi = 0
    for rid, row in rows.items():
        boxes = expected[rid]
        assert len(row["boxes"]) == len(boxes) and row["readers"] == [r for _, r in boxes]
        terms = []
        for got, (box, _) in zip(row["boxes"], boxes, strict=True):
            assert got == pytest.approx(box, abs=1e-6)
            term, dist = _nearest_by_hand(box, lut_doc)
            terms.append(term)
            assert row["distances"][len(terms) - 1] == pytest.approx(dist, rel=1e-5, abs=1e-3)
        assert row["locations"] == terms
        distinct = sorted(set(terms), key=order.index)
        assert row["prompt"] == " <and> ".join(distinct) + " " + row["class_name"].lower()
        multi += len(distinct) > 1
        assert row["class_name"] in ALL_CLASSES and rid.endswith("/" + class_slug(row["class_name"]))
    assert multi >= 1  # at least one prompt binds several locations with <and>


def test_two_prompts_spelled_out(built: Built) -> None:
    """Two pairs written out in full, the way a reader of the paper would form them."""
    rows = read_records(built.out, "vindr-prompts")
    lut_doc = json.loads(built.lut.read_text())
    effusion = next(r for r in rows.values() if r["class_name"] == "Pleural effusion" and r["split"] == "test")
    (box, _), (mirrored, _) = _boxes_by_hand(built.sample)[effusion["id"]]
    first, second = _nearest_by_hand(box, lut_doc)[0], _nearest_by_hand(mirrored, lut_doc)[0]
    assert {first, second} == {"left costophrenic", "right costophrenic"}
    assert effusion["prompt"] == "left costophrenic <and> right costophrenic pleural effusion"
    assert effusion["prompt"] == build_prompt([first, second], "Pleural Effusion")
    assert effusion["pathology"] == "Pleural Effusion"
    nodule = next(r for r in rows.values() if r["class_name"] == "Nodule/Mass")
    assert nodule["prompt"].endswith(" nodule/mass") and nodule["pathology"] is None


def test_accounting(built: Built) -> None:
    config = built.manifest["configs"]["vindr-prompts"]
    counts = config["counts"]
    expected = _boxes_by_hand(built.sample)
    failed = built.sample.no_pixel_data
    assert {rid for rid in expected if rid.startswith(failed + "/")}, "the image without pixels has boxes"
    # An image is decoded once, then fanned out into one record per class: the image without pixel data is one
    # reject (before the fan-out), each other image's classes are its records.
    decoded = {rid: boxes for rid, boxes in expected.items() if not rid.startswith(failed + "/")}
    images = {rid.split("/")[0] for rid in decoded}
    assert counts["total"]["read"] == len(decoded) + 1
    assert counts["total"]["written"] == len(decoded) and counts["total"]["rejected"] == 1
    assert counts["total"]["fanned_out"] == len(decoded) - len(images)
    rejected = {row["record_id"] for path in (built.out / "rejects" / "vindr-prompts").glob("*.parquet")
                for row in pq.read_table(path).to_pylist()}
    assert rejected == {failed}
    normal = {i for i in (*built.sample.train_ids, *built.sample.test_ids) if not any(
        rid.startswith(i) for rid in expected)}
    assert config.get("excluded", config.get("excluded_by_options")) == {"image_without_selected_class": len(normal)}
    assert config["options"]["lut_sha256"] and config["options"]["classes"] == list(ALL_CLASSES)


def test_default_classes_and_deterministic(built: Built, tmp_path: Path) -> None:
    args = ("synth-prompts", "vindr", "--root", built.sample.root, "--lut", built.lut, "--image-format", "path",
            "--workers", "1", "--quiet")
    assert invoke(*args, "--out", tmp_path / "a").exit_code == 0
    assert invoke(*args, "--out", tmp_path / "b").exit_code == 0
    a, b = read_records(tmp_path / "a", "vindr-prompts"), read_records(tmp_path / "b", "vindr-prompts")
    assert a == b and a
    assert {r["split"] for r in a.values()} == {"test"}
    assert {r["class_name"] for r in a.values()} <= set(BOX_CLASSES.default_classes)
    full = read_records(built.out, "vindr-prompts")
    assert all(full[rid]["prompt"] == row["prompt"] for rid, row in a.items())


def test_classes() -> None:
    assert BOX_CLASSES.resolve(["pleural EFFUSION", "Nodule/Mass", "Pleural effusion"]) == ("Pleural effusion",
                                                                                            "Nodule/Mass")
    assert "Pneumothorax" in BOX_CLASSES.default_classes and "Pneumonia" not in BOX_CLASSES.default_classes
    assert BOX_CLASSES.word("Pleural effusion") == "pleural effusion"
    assert BOX_CLASSES.word("Enlarged PA") == "enlarged pa"
    with pytest.raises(CxrdataError, match="unknown VinDr-CXR class 'Pneumonitis'"):
        BOX_CLASSES.resolve(["Pneumonitis"])
    with pytest.raises(CxrdataError, match="image-level"):
        BOX_CLASSES.resolve(["Pneumonia"])


def test_cli_errors(built: Built, tmp_path: Path) -> None:
    base = ("synth-prompts", "vindr", "--root", built.sample.root, "--out", tmp_path / "o")
    result = invoke(*base, "--lut", built.lut, "--classes", "Atelectasis,Pneumonitis")
    assert result.exit_code == 2 and "unknown VinDr-CXR class 'Pneumonitis'" in result.output
    (tmp_path / "bad.json").write_text(json.dumps({"format": "cxrdata.gaussian_lut", "format_version": 1}))
    result = invoke(*base, "--lut", tmp_path / "bad.json")
    assert result.exit_code == 2 and "malformed Gaussian LUT" in result.output
    result = invoke(*base, "--lut", tmp_path / "none.json")
    assert result.exit_code == 2 and "not found" in result.output
