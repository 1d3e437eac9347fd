"""The dataset card as the Hugging Face tools read it: `huggingface_hub.DatasetCard` finds the licence, languages,
task categories, size, pretty name, features and splits; `datasets.load_dataset(OUT, config)` and `cxrdata.load`
give `ClassLabel` for the closed-vocabulary columns with their exact names and the right id for every row, while
polars reads the names. One build of every dataset and recipe, from the bundled samples."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import polars as pl
import pytest
from cxrdata_testing import build_with
from huggingface_hub import DatasetCard

import cxrdata
from cxrdata.anatomy.lut import write_lut
from cxrdata.api import bundled_root
from cxrdata.io.class_labels import class_names, labelled_vocabularies
from cxrdata.io.hub_features import config_features
from cxrdata.io.schema import load_schema
from cxrdata.sources.imagenome_gold import build_gold_lut

PHYSIONET = ("physionet-credentialed-health-data-license-1.5.0",
             "https://physionet.org/about/licenses/physionet-credentialed-health-data-license-150/")
BIMCV = ("bimcv-padchest-gr-data-use-agreement", "https://bimcv.cipf.es/bimcv-projects/padchest-gr/")


@dataclass(frozen=True)
class Case:
    """One build and what its card must say."""

    dataset: str
    options: dict[str, Any]
    configs: tuple[str, ...]
    license: tuple[str, str]
    language: tuple[str, ...]
    tasks: tuple[str, ...]
    cites: tuple[str, ...]  # BibTeX keys the citation section must hold


CASES = {
    "mimic": Case("mimic", {"mimic": True}, ("mimic",), PHYSIONET, ("en",),
                  ("image-to-text", "image-classification"), ("johnson2019mimiccxr", "johnson2019mimiccxrjpg")),
    "ms-cxr": Case("ms-cxr", {"mimic": True}, ("ms-cxr",), PHYSIONET, ("en",), ("zero-shot-object-detection",),
                   ("boecking2022mscxr", "johnson2019mimiccxrjpg", "johnson2019mimiccxr")),
    "ms-cxr-loc": Case("ms-cxr", {"mimic": True, "recipe": "ms-cxr-loc"}, ("ms-cxr-loc",), PHYSIONET, ("en",),
                       ("zero-shot-object-detection",), ("boecking2022mscxr",)),
    "ldm-prompts": Case("mimic", {"mimic": True, "recipe": "ldm-prompts", "extractor": "rules", "lut": True},
                        ("ldm-prompts",), PHYSIONET, ("en",), ("text-to-image",),
                        ("johnson2019mimiccxrjpg", "wu2021chestimagenome")),
    "imagenome": Case("imagenome", {}, ("imagenome-gold", "imagenome-silver"), PHYSIONET, ("en",),
                      ("object-detection", "zero-shot-object-detection"), ("wu2021chestimagenome",)),
    "vindr": Case("vindr", {}, ("vindr",), PHYSIONET, ("en",), ("object-detection", "image-classification"),
                  ("nguyen2022vindrcxr", "goldberger2000physionet")),
    "vindr-lofi-regions": Case("vindr", {"recipe": "lofi-regions"}, ("vindr-lofi-regions",), PHYSIONET, ("en",),
                               ("object-detection", "image-classification", "image-to-text"),
                               ("nguyen2022vindrcxr",)),
    "vindr-prompts": Case("vindr", {"recipe": "vindr-prompts", "lut": True, "splits": "train,test"},
                          ("vindr-prompts",), PHYSIONET, ("en",), ("zero-shot-object-detection",),
                          ("nguyen2022vindrcxr", "wu2021chestimagenome")),
    "padchest-gr": Case("padchest-gr", {"max_reject_share": 1}, ("padchest-gr",), BIMCV, ("en", "es"),
                        ("zero-shot-object-detection", "image-to-text"),
                        ("castro2025padchestgr", "bustos2020padchest")),
}


@pytest.fixture(scope="module")
def lut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("card-lut") / "lut.json"
    write_lut(build_gold_lut(bundled_root("imagenome") / "chest-imagenome-dataset-1.0.0").lut, path)
    return path


@pytest.fixture(scope="module", params=list(CASES))
def built(request, mimic_sample, lut, tmp_path_factory) -> tuple[Case, Path]:
    case = CASES[request.param]
    out = tmp_path_factory.mktemp(f"card-{request.param}") / "out"
    options = {k: v for k, v in case.options.items() if k not in ("mimic", "lut")}
    if case.options.get("mimic"):
        root = mimic_sample.mscxr_csv["1.1.0"].parent if case.dataset == "ms-cxr" else mimic_sample.root
        options.update(root=root, **({"mimic_root": mimic_sample.root} if case.dataset == "ms-cxr" else {}))
    else:
        options["sample"] = True
    if case.options.get("lut"):
        options["lut"] = lut
    build_with(case.dataset, out, image_size=16, **options)
    return case, out


def manifest_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


def test_datasetcard_finds_every_field(built):
    case, out = built
    manifest = manifest_of(out)
    card = DatasetCard.load(out / "README.md")
    data = card.data
    assert data.license == "other"
    assert (data.license_name, data.license_link) == case.license
    assert tuple(data.language) == case.language
    assert tuple(data.task_categories) == case.tasks
    rows = sum(c["counts"]["total"]["written"] for c in manifest["configs"].values())
    assert 0 < rows < 1000 and data.size_categories == ["n<1K"]
    assert data.pretty_name.endswith(f"(cxrdata: {', '.join(case.configs)})")
    assert [c["config_name"] for c in data.configs] == list(case.configs)
    infos = {info["config_name"]: info for info in data.dataset_info}
    assert list(infos) == list(case.configs)
    for name, config in manifest["configs"].items():
        info = infos[name]
        assert {s["name"]: s["num_examples"] for s in info["splits"]} == {
            s: config["counts"]["splits"][s]["written"] for s in config["splits"]}
        shard = out / "data" / name / config["data_files"][0]
        assert datasets.Features._from_yaml_list(info["features"]) == datasets.Features.from_dict(
            config_features(shard))
    body = card.text
    for key in case.cites:
        assert f"{{{key}," in body.split("## Citation", 1)[1]
    fields = body.split("## Data fields\n", 1)[1].split("\n## ", 1)[0]
    for name, config in manifest["configs"].items():
        section = fields.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        schema = load_schema(config["schema"].split("@")[0])
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert [row.split("`")[1] for row in rows] == schema.names  # every column, in order, with its doc
        assert all(row.endswith(" |") and len(row.split(" | ")) == 3 for row in rows)
        for path, vocabulary in labelled_vocabularies(schema):
            (line,) = [x for x in section.splitlines() if x.startswith("- ") and f"`{path}`" in x]
            assert line.endswith(": " + ", ".join(class_names(vocabulary)))


def leaves(value: Any, path: list[str]) -> list[Any]:
    """The values at ``path`` (struct fields) of a row's column value, through lists, in order."""
    if value is None:
        return []
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item, path)]
    if not path:
        return [value]
    return leaves(value.get(path[0]), path[1:])


def class_label_at(feature: Any, path: list[str]) -> Any:
    """The feature at ``path`` (struct fields) of a column's feature, through lists."""
    if isinstance(feature, datasets.List | datasets.LargeList):
        return class_label_at(feature.feature, path)
    if path:
        return class_label_at(feature[path[0]], path[1:])
    return feature


def polars_leaf(dtype: pl.DataType, path: list[str]) -> pl.DataType:
    """The polars type at ``path`` of a column's type, through lists."""
    if isinstance(dtype, pl.List):
        return polars_leaf(dtype.inner, path)
    if path:
        return polars_leaf(next(f.dtype for f in dtype.fields if f.name == path[0]), path[1:])
    return dtype


def test_closed_vocabularies_load_as_class_labels_with_the_right_ids(built):
    _, out = built
    manifest = manifest_of(out)
    seen = 0
    for name, config in manifest["configs"].items():
        schema = load_schema(config["schema"].split("@")[0])
        by_card = datasets.load_dataset(str(out), name)
        by_api = cxrdata.load(out, name)
        frame = pl.read_parquet(out / "data" / name / "*.parquet")
        strings = {row["id"]: row for row in frame.to_dicts()}
        for split, ds in by_card.items():
            assert by_api[split].features == ds.features
            for column_path, vocabulary in labelled_vocabularies(schema):
                column, *fields = column_path.split(".")
                assert polars_leaf(frame.schema[column], fields) == pl.String  # polars reads the names
                feature = class_label_at(ds.features[column], fields)
                assert isinstance(feature, datasets.ClassLabel)
                assert feature.names == list(class_names(vocabulary))
                for row, api_row in zip(ds, by_api[split], strict=True):
                    ids = leaves(row[column], fields)
                    assert api_row["id"] == row["id"] and leaves(api_row[column], fields) == ids
                    assert [feature.names[i] for i in ids] == leaves(strings[row["id"]][column], fields)
                    seen += len(ids)
    if any(labelled_vocabularies(load_schema(c["schema"].split("@")[0])) for c in manifest["configs"].values()):
        assert seen > 0, "no labelled value was compared"


def _copy_vindr(tmp_path: Path) -> Path:
    """The bundled VinDr sample, its images linked and its annotation CSVs copied (so they can be edited)."""
    root = tmp_path / "vindr"
    shutil.copytree(bundled_root("vindr"), root, copy_function=os.link)
    for csv in (root / "annotations").glob("*.csv"):
        text = csv.read_text()
        csv.unlink()
        csv.write_text(text)
    return root


@pytest.mark.parametrize("spelling", ["Pneumonitis", "{} ", "3", "{lower}"])
def test_a_box_class_outside_the_vocabulary_rejects_its_image(tmp_path, spelling):
    """`datasets` would read "Consolidation " as Consolidation and "3" as class 3: the build rejects them instead."""
    root = _copy_vindr(tmp_path)
    csv = root / "annotations" / "annotations_train.csv"
    lines = csv.read_text().splitlines()
    k, line = next((k, line) for k, line in enumerate(lines) if ",Consolidation," in line)
    image_id, written = line.split(",")[0], spelling.format("Consolidation", lower="consolidation")
    lines[k] = line.replace(",Consolidation,", f",{written},")
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = build_with("vindr", out, root=root, image_size=16)
    rejects = pl.read_parquet(out / "rejects" / "vindr" / "*.parquet").filter(pl.col("reason") == "not_in_vocabulary")
    assert rejects["record_id"].to_list() == [image_id]
    assert rejects["stage"].to_list() == ["class-labels"]
    (detail,) = rejects["detail"].to_list()
    assert detail.startswith("regions[") and f".label {written!r} is not one of the 22 names of vocabulary " \
                                              "vindr-box-labels" in detail
    written_ids = pl.read_parquet(out / "data" / "vindr" / "*.parquet")["id"].to_list()
    assert image_id not in written_ids and len(written_ids) == result.results[0].totals.written
    counts = manifest_of(out)["configs"]["vindr"]["counts"]
    assert counts["rejects_by_reason"]["not_in_vocabulary"] == 1
    assert counts["total"]["read"] == counts["total"]["written"] + counts["total"]["rejected"]
    loaded = datasets.load_dataset(str(out), "vindr")  # what was written loads: every value is a known name
    assert sorted(i for split in loaded.values() for i in split["id"]) == sorted(written_ids)
