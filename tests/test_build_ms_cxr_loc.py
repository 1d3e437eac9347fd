"""`build ms-cxr --recipe ms-cxr-loc`: MS-CXR phrases as "{location} {pathology}" prompts, boxes kept,
phrases without a location rejected and counted."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import datasets
import polars as pl
import pytest
from click.testing import CliRunner
from cxrdata_testing import read_records, read_rejects

from cxrdata.anatomy.lut import build_lut, read_lut, write_lut
from cxrdata.boxes import to_xywh_pixels
from cxrdata.cli import main
from cxrdata.extract.rules import RuleExtractor
from cxrdata.sample.chest import anatomy_boxes
from cxrdata.stage import Reject
from cxrdata.targets.locate_stage import PhraseLocateStage

CONFIG = "ms-cxr-loc"
EXACT = {  # phrase of the sample -> its standardised prompt (rules extractor)
    "Small right pneumothorax": "right pneumothorax",
    "Moderate left apical pneumothorax": "left apical pneumothorax",
    "Left mid lung hazy opacity": "left middle lung opacity",
    "Bibasilar plate-like atelectasis": "bibasilar atelectasis",
    "Small effusion at the left costophrenic angle": "left costophrenic pleural effusion",
    "Enlarged heart": "cardiomegaly cardiomegaly",
    "Mild bilateral perihilar edema": "pulmonary edema",
    "Lingular pneumonia": "lingular pneumonia",
}


@pytest.fixture(scope="module")
def loc(mimic_sample, tmp_path_factory):
    root = tmp_path_factory.mktemp("ms-cxr-loc")
    boxes = [item for w, h in ((512, 512), (400, 500)) for item in anatomy_boxes(w, h).items()]
    write_lut(build_lut(boxes), root / "lut.json")
    csv = mimic_sample.mscxr_csv["1.1.0"]
    result = CliRunner().invoke(main, [
        "build", "ms-cxr", "--root", str(csv.parent), "--mimic-root", str(mimic_sample.root), "--recipe", "ms-cxr-loc",
        "--out", str(root / "out"), "--workers", "1", "--quiet", "--radgraph-cache", str(root / "no-radgraph"),
        "--lut", str(root / "lut.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((root / "out" / "manifest.json").read_text())["configs"][CONFIG]
    return root / "out", manifest, csv, read_lut(root / "lut.json")


def csv_groups(path: Path) -> dict[tuple[str, str, str], list[dict]]:
    """(dicom_id, category, phrase) -> its distinct rows (a row repeated verbatim is one box)."""
    groups: dict[tuple[str, str, str], dict[tuple, dict]] = defaultdict(dict)
    for row in pl.read_csv(path, infer_schema=False).iter_rows(named=True):
        groups[(row["dicom_id"], row["category_name"], row["label_text"])].setdefault(tuple(row.values()), row)
    return {key: list(rows.values()) for key, rows in groups.items()}


def test_every_phrase_is_written_or_rejected(mimic_sample, loc):
    out, manifest, csv, _ = loc
    groups = csv_groups(csv)
    written, rejected = read_records(out, CONFIG), read_rejects(out, CONFIG)
    assert len(groups) == mimic_sample.mscxr_groups["1.1.0"] == 27
    assert len(written) + len(rejected) == len(groups) and not set(written) & set(rejected)
    assert len(written) == 27  # every phrase of the sample names a location
    assert manifest["counts"]["total"] == {"read": 27, "written": 27, "rejected": 0}


def test_prompts_boxes_and_gaussians(loc):
    out, manifest, csv, lut = loc
    groups = csv_groups(csv)
    rows = list(read_records(out, CONFIG).values())
    for row in rows:
        source = groups[(row["dicom_id"], row["pathology"], row["phrase"])]
        assert row["prompt"] == " <and> ".join(row["locations"]) + " " + row["pathology"].lower()
        assert row["extractor"] == "rules@2"
        assert row["gaussians"] == [lut.params(t).tolist() for t in row["locations"]] and row["lut_grid"] == 512
        assert len(row["boxes"]) == len(source)
        for box, cell in zip(row["boxes"], source, strict=True):
            pixels = to_xywh_pixels(box, row["original_width"], row["original_height"])
            assert pixels == pytest.approx([int(cell[k]) for k in "xywh"], abs=0.01)
    for phrase, prompt in EXACT.items():  # the phrase filed under a second category gets that category's prompt
        assert {r["prompt"] for r in rows if r["phrase"] == phrase and r["pathology"] != "Consolidation"} == {
            prompt}, phrase
    assert {r["prompt"] for r in rows if r["phrase"] == "Mild bilateral perihilar edema"} == {
        "pulmonary edema", "bilateral consolidation"}
    assert manifest["options"]["recipe"] == "ms-cxr-loc"


def test_loads_with_datasets(loc):
    out = loc[0]
    ds = datasets.load_dataset(str(out))
    row = ds["train"][0]
    assert row["prompt"] and len(row["boxes"][0]) == 4 and isinstance(ds["train"].features["image"], datasets.Image)


def phrase(id_: str, category: str, text: str) -> dict:
    return {"id": id_, "split": "test", "category": category, "phrase": text, "boxes": [[0.1, 0.1, 0.4, 0.5]]}


def test_phrase_stage_reasons_and_unnamed_pathology():
    batch = [
        phrase("ok", "Pneumothorax", "Small left apical pneumothorax"),
        phrase("unnamed", "Pleural Effusion", "Blunting of the left costophrenic angle"),
        phrase("noloc", "Pneumonia", "Multifocal pneumonia"),
        phrase("neg", "Pneumothorax", "No pneumothorax"),
    ]
    stage = PhraseLocateStage(extractor=RuleExtractor(), columns=("id", "split", "prompt", "boxes", "pathology"))
    stage.setup()
    items = stage.run([dict(b) for b in batch])
    out = {item.record_id if isinstance(item, Reject) else item["id"]: item for item in items}
    assert out["ok"] == {"id": "ok", "split": "test", "pathology": "Pneumothorax",
                         "prompt": "left apical pneumothorax", "boxes": [[0.1, 0.1, 0.4, 0.5]]}
    assert out["unnamed"]["prompt"] == "left costophrenic pleural effusion"
    assert out["unnamed"]["_notes"] == ["pathology_not_named"]
    assert (out["noloc"].stage, out["noloc"].reason) == ("locate", "no_location")
    assert out["neg"].reason == "negated"

    strict = PhraseLocateStage(extractor=RuleExtractor(), require_mention=True)
    assert strict.fingerprint() != stage.fingerprint()
    assert strict.run([dict(batch[1])])[0].reason == "no_sentence"
