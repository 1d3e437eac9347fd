"""Recipe lofi-regions: grounding and dense-caption pairs written beside the regions (issue 5, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, plan_of, read_records

from cxrdata.cli import main
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.io.schema import load_schema
from cxrdata.recipe import build_recipe_names, load_build_recipe
from cxrdata.sample.vindr import write_vindr_sample
from cxrdata.targets.box_text import bin_size, boxes_to_text, text_to_boxes
from cxrdata.targets.regions_stage import RegionTargetsStage

BASES = ("ms-cxr", "vindr", "padchest-gr", "imagenome-gold", "imagenome-silver")
NEW = ["box_format", "grounding", "dense_captions"]


@pytest.mark.parametrize("base", BASES)
def test_schema_extends_its_base(base: str) -> None:
    schema, parent = load_schema(f"{base}-lofi-regions"), load_schema(base)
    assert schema.names == [*parent.names, *NEW]
    assert schema.columns[: len(parent.columns)] == parent.columns
    features = datasets.Features.from_dict(schema.features)
    assert features.arrow_schema.remove_metadata() == schema.arrow.remove_metadata()
    assert json.loads(schema.arrow.metadata[b"cxrdata"]) == {"schema": f"{base}-lofi-regions", "version": 1}


def test_one_recipe_format() -> None:
    assert {"lofi-regions", "ms-cxr-loc", "ldm-prompts", "vindr-prompts"} <= set(build_recipe_names())
    assert "lofi" not in build_recipe_names()  # a training recipe
    recipe = load_build_recipe("lofi-regions")
    assert recipe.stages == (("lofi-targets", {"box_format": "lofi"}),) and recipe.output == "{config}-lofi-regions"
    assert recipe.datasets == ("ms-cxr", "imagenome", "vindr", "padchest-gr", "chestxray14")
    with pytest.raises(CxrdataError, match="not a build recipe"):
        load_build_recipe("lofi")
    with pytest.raises(CxrdataError, match="not `build mimic`"):
        plan_of("mimic", recipe="lofi-regions", root=Path("/nowhere"))


def test_stage_skips_unusable_regions_and_rejects_a_record_without_any() -> None:
    stage = RegionTargetsStage()
    row = {"id": "a", "original_width": 200, "original_height": 100, "regions": [
        {"box": None, "phrase": "x"}, {"box": [0.1, 0.1, 0.2, 0.2], "phrase": "  "},
        {"box": [0.5, 0.5, 0.6, 0.7], "phrase": "Nodule"}, {"box": [0.1, 0.2, 0.3, 0.4], "phrase": "Nodule"}]}
    out = stage.process(dict(row))
    boxes = [[0.5, 0.5, 0.6, 0.7], [0.1, 0.2, 0.3, 0.4]]
    target = boxes_to_text(boxes, 200, 100, "lofi")
    assert out["grounding"] == [{"prompt": 'Detect all instances of "Nodule".', "target": target}]
    assert out["dense_captions"] == [{"prompt": f"Describe the regions: {target}", "target": "Nodule"}]
    with pytest.raises(Rejected, match="no_region"):
        stage.process({**row, "regions": row["regions"][:2]})


def _check_pairs(row: dict, phrases_boxes: dict[str, list], fmt: str) -> None:
    w, h = row["original_width"], row["original_height"]
    assert row["box_format"] == fmt
    assert [g["prompt"] for g in row["grounding"]] == [f'Detect all instances of "{p}".' for p in phrases_boxes]
    for pair, dense, (phrase, boxes) in zip(row["grounding"], row["dense_captions"], phrases_boxes.items(),
                                           strict=True):
        assert pair["target"] == boxes_to_text(boxes, w, h, fmt)
        assert dense == {"prompt": f"Describe the regions: {pair['target']}", "target": phrase}
        bw, bh = bin_size(fmt, w, h)
        decoded = text_to_boxes(pair["target"], w, h, fmt)
        for got, want in zip(decoded, sorted(map(tuple, boxes)), strict=True):
            assert all(abs(g - v) <= b + 1e-9 for g, v, b in zip(got, want, (bw, bh, bw, bh), strict=True))


def test_ms_cxr_build(mimic_sample, tmp_path: Path) -> None:
    options = {"root": mimic_sample.mscxr_csv["1.1.0"].parent, "mimic_root": mimic_sample.root, "image_format": "path"}
    assert plan_of("ms-cxr", recipe="lofi-regions", **options).config == "ms-cxr-lofi-regions"
    runs = []
    for name in ("a", "b"):
        build_with("ms-cxr", tmp_path / name, recipe="lofi-regions", **options)
        runs.append(read_records(tmp_path / name, "ms-cxr-lofi-regions"))
    assert runs[0] == runs[1] and runs[0]
    for row in runs[0].values():
        _check_pairs(row, {" ".join(row["phrase"].split()): row["boxes"]}, "lofi")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["configs"]["ms-cxr-lofi-regions"]["options"]["box_format"] == "lofi"


@pytest.fixture(scope="module")
def vindr_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vindr_sample(tmp_path_factory.mktemp("vindr") / "vindr", images=8, test_images=4, seed=0).root


def _phrases(row: dict) -> dict[str, list]:
    groups: dict[str, list] = {}
    for region in row["regions"]:
        if region["box"] is not None and region["phrase"].strip():
            groups.setdefault(" ".join(region["phrase"].split()), []).append(region["box"])
    return groups


def test_vindr_build_is_deterministic_and_loads(vindr_root: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        build_with("vindr", tmp_path / name, recipe="lofi-regions", root=vindr_root, image_format="path",
                   box_format="florence2", max_reject_share=1)
        runs.append(read_records(tmp_path / name, "vindr-lofi-regions"))
    assert runs[0] == runs[1] and runs[0]
    for row in runs[0].values():
        _check_pairs(row, _phrases(row), "florence2")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["configs"]["vindr-lofi-regions"]["counts"]["rejects_by_reason"].get("no_region", 0) > 0
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "a" / "data" / "vindr-lofi-regions"),
                               split="train+test")
    assert set(NEW) <= set(ds.column_names)
    loaded = {r["id"]: r for r in ds.select_columns(["id", *NEW])}  # the image column is a DICOM path
    assert all(loaded[i]["grounding"] == runs[0][i]["grounding"] for i in runs[0])


def test_cli_vindr_paligemma(vindr_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "vindr", "--root", str(vindr_root), "--recipe", "lofi-regions",
                                       "--box-format", "paligemma", "--image-format", "path", "--out", str(out),
                                       "--workers", "1", "--quiet", "--max-reject-share", "1"])
    assert result.exit_code == 0, result.output
    rows = read_records(out, "vindr-lofi-regions")
    assert rows and all(r["box_format"] == "paligemma" for r in rows.values())
    for row in rows.values():
        _check_pairs(row, _phrases(row), "paligemma")
    result = CliRunner().invoke(main, ["build", "vindr", "--root", str(vindr_root), "--box-format", "lofi",
                                       "--out", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code == 2 and "--box-format applies only" in result.output
    result = CliRunner().invoke(main, ["build", "vindr", "--root", str(vindr_root), "--recipe", "ms-cxr-loc",
                                       "--out", str(tmp_path / "y"), "--quiet"])
    assert result.exit_code == 2 and "recipe ms-cxr-loc is for `cxrdata build` ms-cxr, not `build vindr`" in \
        result.output
