"""The dataset card (OUT/README.md): counts per split x label with boxes, box statistics, source and tool versions,
the configuration hash, the licence reminder and how to load it; all derived from the manifest alone."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from cxrdata_testing import build_with

from cxrdata import __version__
from cxrdata.api import bundled_root
from cxrdata.io.card import LICENCE, card_text
from cxrdata.io.layout import OutputLayout
from cxrdata.sources.versions import dataset_versions


def rows_of(out: Path, config: str) -> list[dict]:
    return [row for path in sorted((out / "data" / config).glob("*.parquet"))
            for row in pq.read_table(path, columns=["split", "category", "boxes"]).to_pylist()]


@pytest.fixture(scope="module")
def ms_cxr_out(mimic_sample, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card-ms-cxr") / "out"
    build_with("ms-cxr", out, root=mimic_sample.mscxr_csv["1.1.0"].parent, mimic_root=mimic_sample.root, image_size=64)
    return out


def section(card: str, title: str) -> str:
    return card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_card_counts_per_split_and_category(ms_cxr_out):
    card = (ms_cxr_out / "README.md").read_text()
    stats = section(card, "Statistics: ms-cxr")
    assert "| category | train | validation | test | total | boxes |" in stats
    rows = rows_of(ms_cxr_out, "ms-cxr")
    records = Counter((r["category"], r["split"]) for r in rows)
    boxes = Counter()
    for r in rows:
        boxes[r["category"]] += len(r["boxes"])
    for category in sorted({r["category"] for r in rows}):
        cells = [records[(category, s)] for s in ("train", "validation", "test")]
        assert f"| {category} | {' | '.join(map(str, cells))} | {sum(cells)} | {boxes[category]} |" in stats
    total = sum(boxes.values())
    assert f"{total} boxes (" in stats
    for measure in ("width", "height", "area", "center_x", "center_y"):
        assert f"\n| {measure} | " in stats


def test_card_versions_hash_licence_and_loading(ms_cxr_out):
    card = (ms_cxr_out / "README.md").read_text()
    manifest = json.loads((ms_cxr_out / "manifest.json").read_text())
    versions = section(card, "Versions")
    assert f"- cxrdata {__version__}" in versions
    assert "- ms-cxr read ms-cxr 1.1.0 (evidence: MS_CXR_Local_Alignment_v1.1.0.csv header)" in versions
    assert "- ms-cxr read mimic-cxr-jpg 2.1.0 (evidence: mimic-cxr-2.1.0-test-set-labeled.csv present" in versions
    assert manifest["configs"]["ms-cxr"]["versions"]["ms-cxr"]["version"] == "1.1.0"
    assert f"configuration hash `{manifest['config_hash']}`" in card
    assert LICENCE in section(card, "Licence") and "Do not redistribute" in LICENCE
    assert f'load_dataset("{ms_cxr_out.resolve()}", "ms-cxr")' in card
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["configs"][0]["config_name"] == "ms-cxr"
    assert card == card_text(OutputLayout(ms_cxr_out), manifest)  # the manifest alone makes the card


def test_padchest_card_has_the_json_date_stamp(tmp_path):
    out = tmp_path / "out"
    build_with("padchest-gr", out, root=bundled_root("padchest-gr"), image_size=64, max_reject_share=1)
    card = (out / "README.md").read_text()
    assert ("- padchest-gr read padchest-gr 20240819 (evidence: grounded_reports_20240819.json date stamp)"
            in section(card, "Versions"))
    stats = section(card, "Statistics: padchest-gr")
    assert "| label | train | validation | test | total | boxes |" in stats
    assert "image_missing" in section(card, "Rejects by reason")


def test_versions_from_folder_names_only_when_they_say(tmp_path):
    imagenome = bundled_root("imagenome") / "chest-imagenome-dataset-1.0.0"
    found = dataset_versions("chest-imagenome", imagenome, {}, imagenome.parent / "mimic-cxr-jpg")
    assert found["chest-imagenome"]["version"] == "1.0.0" and found["mimic-cxr-jpg"]["version"] == "2.1.0"
    assert dataset_versions("vindr-cxr", bundled_root("vindr"), {}) == {}  # nothing on disk says it
    physionet = tmp_path / "vindr-cxr" / "1.0.0"
    physionet.mkdir(parents=True)
    assert dataset_versions("vindr-cxr", physionet, {})["vindr-cxr"] == {"version": "1.0.0",
                                                                         "evidence": "folder name 1.0.0"}
    old = tmp_path / "mimic-cxr-jpg" / "2.0.0"
    old.mkdir(parents=True)
    (old / "mimic-cxr-2.0.0-metadata.csv.gz").write_bytes(b"")
    assert dataset_versions("mimic-cxr-jpg", old, {})["mimic-cxr-jpg"]["version"] == "2.0.0"


def test_two_builds_in_folders_of_the_same_name_load_as_themselves(mimic_sample, tmp_path):
    """`datasets` caches a local folder under its name and a hash of the card's YAML: the card must differ."""
    import datasets

    outs = [tmp_path / "a" / "out", tmp_path / "b" / "out"]
    build_with("mimic", outs[0], root=mimic_sample.root, image_size=32)
    build_with("mimic", outs[1], root=mimic_sample.root, image_size=32, views="PA")
    expected = [sum(pq.read_metadata(p).num_rows for p in (out / "data" / "mimic").glob("train-*.parquet"))
                for out in outs]
    assert expected[0] != expected[1]
    loaded = [datasets.load_dataset(str(out), split="train") for out in outs]
    assert [len(ds) for ds in loaded] == expected
    front = yaml.safe_load((outs[1] / "README.md").read_text().split("---")[1])
    (info,) = front["dataset_info"]
    assert info["config_name"] == "mimic"
    assert {s["name"]: s["num_examples"] for s in info["splits"]}["train"] == expected[1]
