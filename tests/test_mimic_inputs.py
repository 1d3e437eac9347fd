"""MIMIC-CXR-JPG inputs a real download can have wrong: duplicated, conflicting and invalid table rows,
ids that would name a path outside the root, empty or broken CSV files. Nothing may vanish or be coerced:
every input dicom_id ends in the output, in the rejects, or in a counted exclusion."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records, read_rejects

from cxrdata.cli import main
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.sample.mimic import MimicSample, write_mimic_sample
from cxrdata.sources.doctor import diagnose_mimic
from cxrdata.sources.mimic import MimicRowStage, chexpert_labels
from cxrdata.sources.mimic_tables import CONFLICT, HAS_LABELS

FRONTAL = ("PA", "AP")
TABLES = ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-chexpert.csv.gz")


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[MimicSample, Path]:
    sample = write_mimic_sample(tmp_path_factory.mktemp("mimic") / "mimic-cxr-jpg", subjects=6, seed=1,
                                full_size_images=0, table_defects=True)
    # Not named "out": `datasets` caches a local folder by its name, so two builds called "out" in one test
    # session load as one (the first one's rows).
    out = tmp_path_factory.mktemp("build") / "defective-mimic-build"
    build_with("mimic", out, root=sample.root, max_reject_share=1)
    return sample, out


def test_the_sample_writes_each_table_defect(defective) -> None:
    sample, _ = defective
    d = sample.table_defects
    metadata = _rows(sample.root / TABLES[0])
    split = _rows(sample.root / TABLES[1])
    labels = _rows(sample.root / TABLES[2])
    rows_of = defaultdict(list)
    for row in metadata:
        rows_of[row["dicom_id"]].append(row)
    assert len(rows_of[d["metadata_identical"]]) == 2 and rows_of[d["metadata_identical"]][0] == rows_of[
        d["metadata_identical"]][1]
    first, second = rows_of[d["metadata_conflict"]]
    assert {k for k in first if first[k] != second[k]} == {"Rows"}
    assert [r["split"] for r in split if r["dicom_id"] == d["split_identical"]] == 2 * [
        next(r["split"] for r in split if r["dicom_id"] == d["split_identical"])]
    assert len({r["split"] for r in split if r["dicom_id"] == d["split_conflict"]}) == 2
    of_study = defaultdict(list)
    for row in labels:
        of_study[row["study_id"]].append(row)
    assert len(of_study[d["chexpert_identical"]]) == 2 and of_study[d["chexpert_identical"]][0] == of_study[
        d["chexpert_identical"]][1]
    assert len(of_study[d["chexpert_conflict"]]) == 2
    assert of_study[d["chexpert_invalid"]][0]["Pneumonia"] == "yes" and d["chexpert_missing"] not in of_study
    assert set(d["path_escape"].split(",")) == {"../../../../etc/passwd", "/tmp/outside-the-root"} <= set(rows_of)


def _expected_rejects(sample: MimicSample, metadata: list[dict[str, str]]) -> dict[str, str]:
    """dicom_id -> reason, written out from the defects, in the row stage's order (ids, conflicts, split,
    labels), then the report and image defects of the default sample."""
    d = sample.table_defects
    expected = {}
    for row in metadata:
        dicom_id, study = row["dicom_id"], row["study_id"]
        if row["ViewPosition"] not in FRONTAL:
            continue
        if dicom_id in d["path_escape"].split(","):
            expected[dicom_id] = "bad_id"
        elif dicom_id == d["metadata_conflict"]:
            expected[dicom_id] = "metadata_conflict"
        elif dicom_id == d["split_conflict"]:
            expected[dicom_id] = "split_conflict"
        elif study == d["chexpert_conflict"]:
            expected[dicom_id] = "chexpert_conflict"
        elif dicom_id == sample.missing_split:
            expected[dicom_id] = "split_missing"
        elif study == d["chexpert_invalid"]:
            expected[dicom_id] = "chexpert_invalid"
        elif int(study) == sample.missing_report:
            expected[dicom_id] = "report_missing"
        elif dicom_id in sample.defective_images:
            expected[dicom_id] = "image_truncated" if dicom_id == sample.truncated_jpeg else "image_corrupt"
    return expected


def test_every_input_dicom_id_is_written_rejected_or_excluded(defective) -> None:
    sample, out = defective
    metadata = _rows(sample.root / TABLES[0])
    written, rejected = read_records(out, "mimic"), read_rejects(out, "mimic")
    config = json.loads((out / "manifest.json").read_text())["configs"]["mimic"]
    views = defaultdict(set)
    for row in metadata:
        views[row["dicom_id"]].add(row["ViewPosition"])
    not_selected = {i for i, v in views.items() if not v & set(FRONTAL)}
    for dicom_id in views:  # id by id
        places = [dicom_id in written, dicom_id in rejected, dicom_id in not_selected]
        assert places.count(True) == 1, (dicom_id, places)
    assert rejected == _expected_rejects(sample, metadata)
    assert config["excluded"] == {"view_not_selected": len(not_selected), "metadata_row_duplicate": 1,
                                  "split_row_duplicate": 1, "chexpert_row_duplicate": 1}
    assert config["counts"]["total"] == {"read": len(views) - len(not_selected), "written": len(written),
                                         "rejected": len(rejected)}
    # Every metadata row: one record or exclusion per id, the identical copy counted, the conflicting one
    # inside its image's reject.
    assert len(metadata) == len(views) + 1 + 1


def test_duplicates_are_kept_once_and_conflicts_never_guessed(defective) -> None:
    sample, out = defective
    d = sample.table_defects
    written = read_records(out, "mimic")
    assert d["metadata_identical"] in written and d["split_identical"] in written
    labels = {r["study_id"]: r for r in _rows(sample.root / TABLES[2])}
    identical = [r for r in written.values() if str(r["study_id"]) == d["chexpert_identical"]]
    assert identical
    for record in identical:
        assert record["chexpert"] == {k: float(v) if v else None for k, v in labels[d["chexpert_identical"]].items()
                                      if k not in ("subject_id", "study_id")}
    missing = [r for r in written.values() if str(r["study_id"]) == d["chexpert_missing"]]
    assert missing and all(r["chexpert"] is None for r in missing)  # no labels, never "not mentioned"
    notes = json.loads((out / "manifest.json").read_text())["configs"]["mimic"]["counts"]["notes"]
    assert notes["chexpert_row_missing"] == len(missing)
    loaded = datasets.load_dataset(str(out))
    by_id = {row["id"]: row for split in loaded.values() for row in split}
    assert set(by_id) == set(written)
    assert all(by_id[r["id"]]["chexpert"] is None for r in missing)
    assert by_id[identical[0]["id"]]["chexpert"] == identical[0]["chexpert"]
    assert not [r for r in written.values() if str(r["study_id"]) in (d["chexpert_conflict"], d["chexpert_invalid"])]


def test_reject_details_name_the_problem(defective) -> None:
    import pyarrow.parquet as pq

    sample, out = defective
    d = sample.table_defects
    details = {r["record_id"]: r["detail"] for p in (out / "rejects" / "mimic").glob("*.parquet")
               for r in pq.read_table(p).to_pylist()}
    assert details[d["metadata_conflict"]] == (
        f"2 different rows in metadata for dicom_id={d['metadata_conflict']} (they differ in Rows)")
    assert details[d["split_conflict"]] == (
        f"2 different rows in split for dicom_id={d['split_conflict']} (they differ in split)")
    invalid = next(i for i, t in details.items() if t.startswith(f"study {d['chexpert_invalid']}:"))
    assert details[invalid] == f"study {d['chexpert_invalid']}: Pneumonia is 'yes', not 1.0, 0.0, -1.0 or empty"
    assert details["../../../../etc/passwd"] == "dicom_id '../../../../etc/passwd' is not 5 groups of 8 hex digits"


def test_doctor_names_each_table_defect_as_the_build_treats_it(defective) -> None:
    sample, _ = defective
    findings = [f for f in diagnose_mimic(sample.root, decode=0) if f.level != "ok" and "full release" not in f.detail]
    by_table = defaultdict(list)
    for f in findings:
        by_table[f.item].append((f.level, f.detail.split(";")[0]))
    assert by_table[TABLES[0]] == [
        ("warning", "1 extra row(s) repeating another exactly"), ("error", "1 key(s) with differing rows"),
        ("error", "2 rows whose dicom_id is not 5 groups of 8 hex digits (first: '../../../../etc/passwd')")]
    assert by_table[TABLES[1]] == [("warning", "1 extra row(s) repeating another exactly"),
                                   ("error", "1 key(s) with differing rows")]
    assert by_table[TABLES[2]] == [("warning", "1 extra row(s) repeating another exactly"),
                                   ("error", "1 key(s) with differing rows"),
                                   ("error", "1 label cell(s) not 1.0, 0.0, -1.0 or empty (first: Pneumonia = 'yes')")]
    assert all(".." not in f.detail for f in findings if f.item in ("files/ images", "reports"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> MimicSample:
    return write_mimic_sample(tmp_path_factory.mktemp("small") / "mimic-cxr-jpg", subjects=2, seed=2,
                              full_size_images=0, defects=False)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(("broken", "says"), [
    (b"", "is empty (0 bytes)"),
    (gzip.compress(b"", mtime=0), "has no header line"),
    (b"dicom_id,subject_id\n", "is named .gz but is not gzip-compressed"),
])
def test_empty_or_broken_tables_are_one_error_line(small, tmp_path, table: str, broken: bytes, says: str) -> None:
    root = tmp_path / "mimic"
    root.mkdir()
    for path in small.root.glob("*.csv*"):
        shutil.copy(path, root / path.name)
    (root / "files").symlink_to(small.root / "files")
    (root / table).write_bytes(broken)
    with pytest.raises(CxrdataError, match=re.escape(says)):
        build_with("mimic", tmp_path / "out", root=root)
    result = CliRunner().invoke(main, ["build", "mimic", "--root", str(root), "--out", str(tmp_path / "cli")],
                                catch_exceptions=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = result.output.strip()
    assert line.startswith("error:") and len(line.splitlines()) == 1 and table in line and says in line


def _row(**cells: str | None) -> dict:
    """A joined row as MimicRowStage receives it (the public example of FORMATS.md 1.2), with changes."""
    raw = {"dicom_id": "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "subject_id": "10000032",
           "study_id": "50414267", "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": "PA",
           "Rows": "3056", "Columns": "2544", "StudyDate": "21800506", "StudyTime": "213014.531",
           "PatientOrientationCodeSequence_CodeMeaning": "Erect", "split_raw": "train",
           CONFLICT: None, HAS_LABELS: True, **dict.fromkeys(chexpert_labels()), "Edema": "1.0"}
    raw.update(cells)
    return {"id": raw["dicom_id"], "split": "train", "_raw": raw}


@pytest.mark.parametrize(("cells", "reason"), [
    ({"dicom_id": "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014\n"}, "bad_id"),
    ({"dicom_id": "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014/../x"}, "bad_id"),
    ({"subject_id": "10_000_032"}, "bad_id"),
    ({"study_id": "+50414267"}, "bad_id"),
    ({"Edema": "yes"}, "chexpert_invalid"),
    ({"Edema": "nan"}, "chexpert_invalid"),
    ({"Edema": "2.0"}, "chexpert_invalid"),
])
def test_cells_that_are_not_what_they_claim_are_rejected(cells, reason) -> None:
    with pytest.raises(Rejected) as exc:
        MimicRowStage(root=Path("/data"), reports_root=Path("/data")).process(_row(**cells))
    assert exc.value.reason == reason


def test_labels_sizes_and_paths_of_a_good_row() -> None:
    record = MimicRowStage(root=Path("/data"), reports_root=Path("/data")).process(_row(Cardiomegaly="-1.0",
                                                                                         Atelectasis="0.0"))
    assert record["chexpert"] == {**dict.fromkeys(chexpert_labels()), "Edema": 1.0, "Cardiomegaly": -1.0,
                                  "Atelectasis": 0.0}
    assert record["_original_size"] == (2544, 3056) and "_notes" not in record
    image = "/data/files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg"
    assert record["_image_file"] == image
    assert record["_report_file"] == "/data/files/p10/p10000032/s50414267.txt"
    bad_size = MimicRowStage(root=Path("/data"), reports_root=Path("/data")).process(_row(Rows="nan"))
    assert bad_size["_original_size"] is None and bad_size["_notes"] == ["metadata_size_invalid"]
    unlabelled = MimicRowStage(root=Path("/data"), reports_root=Path("/data")).process(_row(**{HAS_LABELS: None}))
    assert unlabelled["chexpert"] is None and unlabelled["_notes"] == ["chexpert_row_missing"]
