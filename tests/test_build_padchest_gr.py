"""A PadChest-GR build of the synthetic sample: accounting, typed shards, boxes, sentences, splits."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cxrdata.cli import main
from cxrdata.imaging.png16 import decode_png16
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sample.padchest_gr import IMAGE_DIR, REPORTS_FILE, PadchestGrSample, write_padchest_gr_sample
from cxrdata.sources.padchest_gr import PadchestGrSource

SIZE = 128


@dataclass(frozen=True)
class Built:
    sample: PadchestGrSample
    out: Path
    manifest: dict
    ds: datasets.DatasetDict


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("padchest-build")
    sample = write_padchest_gr_sample(base / "padchest-gr", studies=12, seed=0)
    out = base / "out"
    build([PadchestGrSource(sample.root, image_size=SIZE)], BuildOptions(out=out, workers=1, tasks=3, quiet=True))
    ds = datasets.load_dataset("parquet", data_dir=str(out / "data" / "padchest-gr"))
    return Built(sample, out, json.loads((out / "manifest.json").read_text()), ds)


def test_manifest_accounting(built: Built) -> None:
    sample, counts = built.sample, built.manifest["configs"]["padchest-gr"]["counts"]
    study_of = {image: study for study, image in sample.image_ids.items()}
    rejected = {sample.missing_png: "image_missing", sample.eight_bit_png: "png_not_16bit"}
    read = Counter(sample.splits.values())
    bad = Counter(sample.splits[study_of[i]] for i in rejected)
    assert counts["splits"] == {s: {"read": read[s], "written": read[s] - bad[s], "rejected": bad[s]} for s in read}
    assert counts["rejects_by_reason"] == dict(Counter(rejected.values()))
    files = sorted((built.out / "rejects" / "padchest-gr").glob("*.parquet"))
    rejects = [r for p in files for r in pq.read_table(p).to_pylist()]
    assert {r["record_id"]: r["reason"] for r in rejects} == rejected


def test_patient_disjoint_splits_preserved(built: Built) -> None:
    sample, ds = built.sample, built.ds
    assert ds["train"].features["patient_id"] == datasets.Value("string")
    patients = {split: set(ds[split]["patient_id"]) for split in ds}
    assert sorted(patients) == ["test", "train", "validation"]
    for a in patients:
        for b in patients:
            assert a == b or not patients[a] & patients[b]
    for split in ds:
        for row in ds[split]:
            assert row["split"] == split == sample.splits[row["study_id"]]
            assert row["patient_id"] == sample.patient_ids[row["study_id"]] and len(row["patient_id"]) in (38, 39)


def test_sentences_and_boxes_match_the_json(built: Built) -> None:
    entries = {e["ImageID"]: e for e in json.loads((built.sample.root / REPORTS_FILE).read_text())}
    n_regions = n_negatives = 0
    for split in built.ds:
        for row in built.ds[split]:
            findings = entries[row["id"]]["findings"]
            assert [(s["sentence_en"], s["sentence_es"], s["abnormal"]) for s in row["sentences"]] == [
                (f["sentence_en"], f["sentence_es"], f["abnormal"]) for f in findings]
            assert [s["labels"] for s in row["sentences"]] == [f.get("labels", []) for f in findings]
            expected = [(k, reader, box) for k, f in enumerate(findings)
                        for key, reader in (("boxes", "reader1"), ("extra_boxes", "reader2")) for box in f.get(key, [])]
            assert [(r["sentence"], r["reader"]) for r in row["regions"]] == [(k, reader) for k, reader, _ in expected]
            for region, (_, _, box) in zip(row["regions"], expected, strict=True):
                assert region["box"] == pytest.approx(box, abs=1e-7)
            n_regions += len(row["regions"])
            n_negatives += sum(not s["abnormal"] for s in row["sentences"])
    assert n_regions > 0 and n_negatives > 0


def test_decoded_image_matches_the_png(built: Built) -> None:
    row = built.ds["train"][0]
    expected = decode_png16(str(built.sample.root / IMAGE_DIR / row["id"]), max_side=SIZE)
    assert (row["original_width"], row["original_height"]) == built.sample.image_sizes[row["id"]]
    stored = np.asarray(row["image"].convert("L"), dtype=np.int16)
    assert stored.shape == expected.pixels.shape and max(stored.shape) == SIZE
    diff = np.abs(stored - expected.pixels)
    assert diff.mean() < 1.0 and diff.max() <= 12  # JPEG q95 of the same display image


def test_cli_sample_data_then_build(tmp_path: Path) -> None:
    runner = CliRunner()
    raw, out = tmp_path / "raw", tmp_path / "out"
    result = runner.invoke(main, ["sample-data", "padchest-gr", "--out", str(raw)], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote 12 studies" in result.output
    args = ["build", "padchest-gr", "--root", str(raw), "--out", str(out), "--image-format", "path", "--quiet"]
    assert runner.invoke(main, [*args, "--workers", "1"], catch_exceptions=False).exit_code == 0
    counts = json.loads((out / "manifest.json").read_text())["configs"]["padchest-gr"]["counts"]
    assert counts["total"] == {"read": 12, "written": 10, "rejected": 2}
    reports = raw / REPORTS_FILE
    reports.write_text(reports.read_text()[:-100])
    broken = runner.invoke(main, [*args, "--overwrite"])
    assert broken.exit_code == 2 and broken.output.startswith(f"error: {REPORTS_FILE} is not valid JSON")
    assert len(broken.output.strip().splitlines()) <= 2
