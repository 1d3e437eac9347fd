"""`build mimic` on the synthetic sample: accounting, typed shards, images, splits, resume rules."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import datasets
import polars as pl
import pyarrow.parquet as pq
import pytest
from cxrdata_testing import build_with, expected_rejects, metadata, read_records, read_rejects

from cxrdata.errors import CxrdataError
from cxrdata.io.class_labels import with_class_labels
from cxrdata.io.schema import load_schema


def test_every_frontal_image_is_written_or_rejected_with_its_reason(mimic_sample, mimic_build):
    out = mimic_build.out
    written = read_records(out, "mimic")
    rejected = read_rejects(out, "mimic")
    expected = expected_rejects(mimic_sample)
    assert rejected == expected
    assert expected, "the sample has defects among frontal images"
    assert len(written) + len(rejected) == mimic_sample.frontal_images
    assert not set(written) & set(rejected)
    assert {r["view_position"] for r in written.values()} <= {"PA", "AP"}

    totals = mimic_build.results[0].totals
    assert totals.read == mimic_sample.frontal_images
    assert totals.written == len(written) and totals.rejected == len(rejected)
    assert dict(totals.reasons) == dict(Counter(expected.values()))
    for counts in totals.splits.values():
        assert counts.read == counts.written + counts.rejected


def test_manifest_counts_and_exclusions(mimic_sample, mimic_build):
    import json

    manifest = json.loads((mimic_build.out / "manifest.json").read_text())
    config = manifest["configs"]["mimic"]
    assert config["counts"]["total"]["read"] == mimic_sample.frontal_images
    for counts in config["counts"]["splits"].values():
        assert counts["read"] == counts["written"] + counts["rejected"]
    assert config["excluded"] == {"view_not_selected": mimic_sample.images - mimic_sample.frontal_images}
    assert sorted(config["data_files"]) == sorted(p.name for p in (mimic_build.out / "data/mimic").glob("*.parquet"))


def test_shards_load_typed_with_datasets(mimic_build):
    out = mimic_build.out
    by_card = datasets.load_dataset(str(out))
    by_dir = datasets.load_dataset("parquet", data_dir=str(out / "data" / "mimic"))
    assert set(by_card) <= {"train", "validation", "test"} and "train" in by_card
    schema = load_schema("mimic")  # the card declares view_position a ClassLabel; the shards hold strings
    for ds, features in ((by_card, with_class_labels(schema.features, schema)), (by_dir, schema.features)):
        train = ds["train"]
        assert train.features == datasets.Features.from_dict(features)
        row = train[0]
        assert row["image"].size == (row["image_width"], row["image_height"])
        assert row["image"].mode == "L"
    assert sum(len(s) for s in by_card.values()) == mimic_build.results[0].totals.written


def test_every_shard_carries_the_schema_file_exactly(mimic_build):
    schema = load_schema("mimic").arrow
    shards = sorted((mimic_build.out / "data" / "mimic").glob("*.parquet"))
    assert shards
    for path in shards:
        assert pq.read_schema(path).equals(schema, check_metadata=True), path.name
        split, index, _, count = path.stem.split("-")
        assert split in ("train", "validation", "test") and int(index) < int(count)


def test_images_keep_aspect_and_record_the_original_size(mimic_sample, mimic_build):
    for record in read_records(mimic_build.out, "mimic").values():
        width, height = mimic_sample.image_sizes[record["dicom_id"]]
        assert (record["original_width"], record["original_height"]) == (width, height)
        assert max(record["image_width"], record["image_height"]) == min(512, max(width, height))
        assert abs(record["image_width"] / record["image_height"] - width / height) < 0.01
        assert record["image"]["bytes"][:2] == b"\xff\xd8"
        assert record["image_path"] == f"files/p{record['subject_id'] // 10**6}/p{record['subject_id']}/" \
            f"s{record['study_id']}/{record['dicom_id']}.jpg"


def test_full_size_images_are_shrunk_to_512(mimic_sample, mimic_build):
    records = read_records(mimic_build.out, "mimic")
    full = [records[d] for d in mimic_sample.full_size if d in records]
    assert full, "some full-size images are frontal and valid"
    for record in full:
        assert max(record["original_width"], record["original_height"]) > 2000
        assert max(record["image_width"], record["image_height"]) == 512


def test_a_patient_never_spans_tasks_or_splits(mimic_build):
    placement: dict[int, set[tuple[str, str]]] = {}
    for path in (mimic_build.out / "data" / "mimic").glob("*.parquet"):
        split, task = path.stem.split("-")[:2]
        for subject in pq.read_table(path, columns=["subject_id"]).column(0).to_pylist():
            placement.setdefault(subject, set()).add((split, task))
    assert placement and all(len(p) == 1 for p in placement.values())


def test_report_sections_and_labels_reach_the_rows(mimic_sample, mimic_build):
    records = read_records(mimic_build.out, "mimic").values()
    assert all("FINAL REPORT" in r["report"] for r in records)
    assert sum(r["impression"] is not None for r in records) > len(records) / 2
    assert any(r["findings"] is not None for r in records)
    chexpert = pl.read_csv(mimic_sample.root / "mimic-cxr-2.0.0-chexpert.csv.gz", infer_schema=False)
    truth = {int(r["study_id"]): r for r in chexpert.iter_rows(named=True)}
    for record in records:
        for label, value in record["chexpert"].items():
            cell = truth[record["study_id"]][label]
            assert value == (float(cell) if cell else None)


def test_study_time_without_its_leading_zero_is_parsed(mimic_sample, mimic_build):
    records = read_records(mimic_build.out, "mimic")
    early = [r for r in metadata(mimic_sample).iter_rows(named=True)
             if r["dicom_id"] in records and float(r["StudyTime"]) < 100000]
    assert early, "the sample has studies before 10:00"
    for row in early:
        when = records[row["dicom_id"]]["study_datetime"]
        assert when.strftime("%H%M%S") == f"{int(float(row['StudyTime'])):06d}"
        assert when.strftime("%Y%m%d") == row["StudyDate"]


def test_rerun_does_nothing_and_changes_nothing(mimic_sample, mimic_build):
    out = mimic_build.out
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build_with("mimic", out, workers=2, root=mimic_sample.root)
    assert again.nothing_to_do
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_a_changed_configuration_is_refused(mimic_sample, mimic_build):
    with pytest.raises(CxrdataError, match="image_size"):
        build_with("mimic", mimic_build.out, root=mimic_sample.root, image_size=256)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def test_same_bytes_whatever_the_number_of_workers(mimic_sample, mimic_build, tmp_path):
    one = build_with("mimic", tmp_path / "one", root=mimic_sample.root)
    assert _digest(one.out / "data" / "mimic") == _digest(mimic_build.out / "data" / "mimic")
    assert (one.out / "manifest.json").read_bytes() != b""
    assert _digest(one.out / "rejects" / "mimic") == _digest(mimic_build.out / "rejects" / "mimic")


def test_all_views_original_bytes_and_overwrite(mimic_sample, tmp_path):
    out = tmp_path / "all"
    result = build_with("mimic", out, root=mimic_sample.root, views="all", image_size=0)
    assert result.results[0].totals.read == mimic_sample.images
    rejected = read_rejects(out, "mimic")
    assert rejected == expected_rejects(mimic_sample, views=())
    assert rejected[mimic_sample.missing_split] == "split_missing"
    records = read_records(out, "mimic")
    assert any(r["view_position"] not in ("PA", "AP") for r in records.values())
    for record in records.values():
        original = (mimic_sample.root / record["image_path"]).read_bytes()
        assert record["image"]["bytes"] == original
        assert (record["image_width"], record["image_height"]) == (record["original_width"], record["original_height"])
    again = build_with("mimic", out, root=mimic_sample.root, image_format="path", overwrite=True)
    assert again.results[0].totals.read == mimic_sample.frontal_images
    row = datasets.load_dataset(str(out), split="train")[0]
    assert row["image"].size == (row["original_width"], row["original_height"])
    stored = pq.read_table(next((out / "data" / "mimic").glob("train-*.parquet"))).column("image").to_pylist()[0]
    assert stored["bytes"] is None and Path(stored["path"]).is_file()
