"""A PadChest-GR build of the synthetic sample (records with ids, and without: paired by order): accounting,
typed shards, boxes, sentences, splits, the pairing mode in the manifest and the CLI."""

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
from cxrdata_testing import build_with, read_records

from cxrdata.cli import main
from cxrdata.imaging.png16 import decode_png16
from cxrdata.sample.padchest_gr import REPORTS_FILE, PadchestGrSample, write_padchest_gr_sample

SIZE = 128


@dataclass(frozen=True)
class Built:
    sample: PadchestGrSample
    out: Path
    manifest: dict
    ds: datasets.DatasetDict


@pytest.fixture(scope="module", params=[True, False], ids=["ids", "order"])
def built(request, tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("padchest-build")
    sample = write_padchest_gr_sample(base / "padchest-gr", studies=12, seed=0, ids=request.param,
                                      nested=not request.param)
    out = base / "out"
    build_with("padchest-gr", out, root=sample.root, image_size=SIZE, tasks=3, max_reject_share=1)
    ds = datasets.load_dataset("parquet", data_dir=str(out / "data" / "padchest-gr"))
    return Built(sample, out, json.loads((out / "manifest.json").read_text()), ds)


def test_manifest_accounting(built: Built) -> None:
    sample, config = built.sample, built.manifest["configs"]["padchest-gr"]
    counts = config["counts"]
    assert config["options"]["pairing"] == ("ids" if sample.ids else "order")
    read = sample.entries - sample.duplicate_entries
    assert counts["total"] == {"read": read, "written": read - len(sample.rejected), "rejected": len(sample.rejected)}
    assert counts["rejects_by_reason"] == dict(sorted(Counter(sample.rejected.values()).items()))
    assert counts["notes"].get("duplicate_entry", 0) == sample.duplicate_entries
    files = sorted((built.out / "rejects" / "padchest-gr").glob("*.parquet"))
    rejects = [r for p in files for r in pq.read_table(p).to_pylist()]
    assert {r["record_id"]: r["reason"] for r in rejects} == sample.rejected
    written = read_records(built.out, "padchest-gr")  # id by id: every record written or rejected, never both
    assert len(written) + len(rejects) + sample.duplicate_entries == sample.entries
    assert not set(written) & set(sample.rejected)
    unpaired = set() if sample.ids else {sample.image_ids[sample.mismatched_study]}  # rejected as entry-<k>
    assert set(sample.image_ids.values()) - set(sample.rejected) - unpaired <= set(written)
    good = {image: study for study, image in sample.image_ids.items()}
    for r in rejects:  # a record that could not be paired has no split; the others keep their study's
        if r["record_id"] in good:
            assert r["split"] == sample.splits[good[r["record_id"]]]
        elif r["record_id"].startswith("entry-"):
            assert r["split"] == "unknown"


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
            assert row["split"] == split
            if row["study_id"] in sample.splits:
                assert split == sample.splits[row["study_id"]]
                assert row["patient_id"] == sample.patient_ids[row["study_id"]]
            assert len(row["patient_id"]) in (38, 39)


def test_sentences_and_boxes_match_the_json(built: Built) -> None:
    records = json.loads((built.sample.root / REPORTS_FILE).read_text())
    entries = dict(zip(built.sample.image_ids.values(), records, strict=False))  # the good studies
    if built.sample.ids:
        entries.update({e["ImageID"]: e for e in records[len(entries):]})
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
    row = next(r for r in built.ds["train"] if r["id"] in built.sample.image_sizes)
    expected = decode_png16(str(built.sample.root / built.sample.image_dir / row["id"]), max_side=SIZE)
    assert (row["original_width"], row["original_height"]) == built.sample.image_sizes[row["id"]]
    stored = np.asarray(row["image"].convert("L"), dtype=np.int16)
    assert stored.shape == expected.pixels.shape and max(stored.shape) == SIZE
    diff = np.abs(stored - expected.pixels)
    assert diff.mean() < 1.0 and diff.max() <= 12  # JPEG q95 of the same display image


@pytest.mark.parametrize("flags", [[], ["--no-ids", "--nested"]], ids=["ids", "order"])
def test_cli_sample_data_then_build(tmp_path: Path, flags: list[str]) -> None:
    runner = CliRunner()
    raw, out = tmp_path / "raw", tmp_path / "out"
    result = runner.invoke(main, ["sample-data", "padchest-gr", "--out", str(raw), *flags], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote 20 studies" in result.output
    args = ["build", "padchest-gr", "--root", str(raw), "--out", str(out), "--image-format", "path"]
    built = runner.invoke(main, [*args, "--workers", "1"], catch_exceptions=False)
    assert built.exit_code == 0, built.output
    manifest = json.loads((out / "manifest.json").read_text())["configs"]["padchest-gr"]
    expected = {"read": 28, "written": 19, "rejected": 9} if not flags else {"read": 25, "written": 17, "rejected": 8}
    assert manifest["counts"]["total"] == expected and manifest["options"]["pairing"] == ("order" if flags else "ids")
    assert ("paired with master_table.csv's studies by order" in " ".join(built.output.split())) == bool(flags)
    reports = raw / REPORTS_FILE
    reports.write_text(reports.read_text()[:-100])
    broken = runner.invoke(main, [*args, "--quiet", "--overwrite"])
    assert broken.exit_code == 2 and broken.output.startswith(f"error: {REPORTS_FILE} is not valid JSON")
    assert len(broken.output.strip().splitlines()) <= 2 and "Traceback" not in broken.output
