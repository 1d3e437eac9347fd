"""The PadChest-GR reader and the 16-bit PNG image stage on the synthetic sample, stage by stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cxrdata.errors import CxrdataError
from cxrdata.pipeline.stage import StageChain
from cxrdata.sample.padchest_gr import MASTER_TABLE, REPORTS_FILE, PadchestGrSample, write_padchest_gr_sample
from cxrdata.sources.padchest_gr import PadchestGrSource


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> PadchestGrSample:
    return write_padchest_gr_sample(tmp_path_factory.mktemp("pgr"), studies=12, seed=0)


def _run(root: Path, **options: object) -> tuple[dict, dict]:
    source = PadchestGrSource(root, **{"image_size": 64, **options})  # type: ignore[arg-type]
    source.check()
    chain = StageChain(source.stages())
    chain.setup()
    kept, rejects = chain.run(source.records())
    return {r["id"]: r for r in kept}, {r.record_id: r.reason for r in rejects}


def test_rejects(sample: PadchestGrSample) -> None:
    rows, rejects = _run(sample.root)
    assert rejects == {sample.missing_png: "image_missing", sample.eight_bit_png: "png_not_16bit"}
    assert len(rows) == len(sample.study_ids) - 2


def test_rows(sample: PadchestGrSample) -> None:
    rows, _ = _run(sample.root)
    entries = {e["ImageID"]: e for e in json.loads((sample.root / REPORTS_FILE).read_text())}
    for study_id, image_id in sample.image_ids.items():
        if image_id not in rows:
            continue
        row, entry = rows[image_id], entries[image_id]
        assert row["study_id"] == study_id and isinstance(row["patient_id"], str)
        assert row["patient_id"] == sample.patient_ids[study_id] and row["split"] == sample.splits[study_id]
        assert (row["original_width"], row["original_height"]) == sample.image_sizes[image_id]
        assert row["previous_image_id"] == sample.prior_image_ids.get(study_id)
        assert [s["sentence_en"] for s in row["sentences"]] == [f["sentence_en"] for f in entry["findings"]]
        assert [s["abnormal"] for s in row["sentences"]] == [f["abnormal"] for f in entry["findings"]]
        expected = [(k, reader, box) for k, f in enumerate(entry["findings"])
                    for key, reader in (("boxes", "reader1"), ("extra_boxes", "reader2")) for box in f.get(key, [])]
        assert [(r["sentence"], r["reader"], r["box"]) for r in row["regions"]] == expected
        for region in row["regions"]:
            sentence = row["sentences"][region["sentence"]]
            assert region["phrase"] == sentence["sentence_en"] and region["label"] == "; ".join(sentence["labels"])
            assert [f"label|yes|{x}" for x in sentence["labels"]] == region["attributes"][: len(sentence["labels"])]
    sentences = [s for r in rows.values() for s in r["sentences"]]
    negatives = [s for s in sentences if not s["abnormal"]]
    assert negatives and all(s["labels"] == [] and s["sentence_es"] for s in negatives)  # kept as negatives
    assert {r["reader"] for row in rows.values() for r in row["regions"]} == {"reader1", "reader2"}


def test_storage_modes(sample: PadchestGrSample) -> None:
    """path: header only, an absolute string path, an 8-bit PNG still refused; max_side 0: full-size lossless PNG."""
    paths, path_rejects = _run(sample.root, image_format="path")
    full, _ = _run(sample.root, image_size=0, image_format="jpeg")
    assert path_rejects == {sample.missing_png: "image_missing", sample.eight_bit_png: "png_not_16bit"}
    for image_id, row in paths.items():
        assert row["image"] == str((sample.root / row["image_path"]).absolute())  # a plain path: not an Image
        assert (row["image_width"], row["image_height"]) == sample.image_sizes[image_id]
    for image_id, row in full.items():
        assert row["image"]["bytes"].startswith(b"\x89PNG") and row["image"]["path"] == image_id
        assert (row["image_width"], row["image_height"]) == sample.image_sizes[image_id]


def test_truncated_json_is_one_clear_error(sample: PadchestGrSample, tmp_path: Path) -> None:
    root = tmp_path / "pgr"
    shutil.copytree(sample.root, root)
    reports = root / REPORTS_FILE
    reports.write_text(reports.read_text()[:-300])
    with pytest.raises(CxrdataError, match=r"^grounded_reports_20240819\.json is not valid JSON \(truncated"):
        PadchestGrSource(root).check()


def test_renamed_master_column_is_one_clear_error(sample: PadchestGrSample, tmp_path: Path) -> None:
    root = tmp_path / "pgr"
    shutil.copytree(sample.root, root)
    master = root / MASTER_TABLE
    master.write_text(master.read_text().replace("PatientID", "Patient_ID", 1))
    with pytest.raises(CxrdataError, match=r"^master_table\.csv: missing column\(s\) PatientID \(found: StudyID"):
        PadchestGrSource(root).check()


def test_entry_without_ids_is_a_reject(sample: PadchestGrSample, tmp_path: Path) -> None:
    root = tmp_path / "pgr"
    shutil.copytree(sample.root, root)
    reports = root / REPORTS_FILE
    entries = json.loads(reports.read_text())
    del entries[0]["ImageID"]
    reports.write_text(json.dumps(entries))
    rows, rejects = _run(root, image_format="path")
    assert rejects["entry-0"] == "id_missing" and len(rows) == len(sample.study_ids) - 3
