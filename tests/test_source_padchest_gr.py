"""The PadChest-GR reader and the 16-bit PNG image stage on the synthetic sample, stage by stage, in both real
variants of the JSON: records with StudyID/ImageID, and records without (paired with the master table by order)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cxrdata_testing import plan_of, run_plan

from cxrdata.errors import CxrdataError
from cxrdata.sample.padchest_gr import MASTER_TABLE, REPORTS_FILE, PadchestGrSample, write_padchest_gr_sample
from cxrdata.sources.padchest_gr import PadchestGrOptions, PadchestGrSource
from cxrdata.sources.padchest_gr_master import FIRST_CHECKED

VARIANTS = {"ids": {"ids": True}, "order": {"ids": False, "nested": True}}


@pytest.fixture(scope="module", params=list(VARIANTS))
def sample(request, tmp_path_factory: pytest.TempPathFactory) -> PadchestGrSample:
    return write_padchest_gr_sample(tmp_path_factory.mktemp("pgr"), studies=12, seed=0, **VARIANTS[request.param])


def _run(root: Path, **options: object) -> tuple[dict, dict]:
    kept, rejects = run_plan(plan_of("padchest-gr", root=root, **{"image_size": 64, **options}))
    return kept, {i: r.reason for i, r in rejects.items()}


def _copy(sample: PadchestGrSample, tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "pgr"
    shutil.copytree(sample.root, root)
    return root, json.loads((root / REPORTS_FILE).read_text())


def _write(root: Path, entries: list[dict]) -> None:
    (root / REPORTS_FILE).write_text(json.dumps(entries))


def test_every_record_is_written_rejected_or_noted_id_by_id(sample: PadchestGrSample) -> None:
    rows, rejects = _run(sample.root)
    assert rejects == sample.rejected  # ImageID, or entry-<k> for a record that cannot be paired by order
    mismatched = set() if sample.ids else {sample.image_ids[sample.mismatched_study]}  # rejected as entry-<k>
    assert set(sample.image_ids.values()) - set(rejects) - mismatched <= set(rows)
    assert not set(rows) & set(rejects)
    # every JSON record: written, rejected, or (a verbatim repeat) counted as a note on the one kept
    assert len(rows) + len(rejects) + sample.duplicate_entries == sample.entries
    notes = [n for r in rows.values() for n in r.get("_notes", [])]
    assert notes.count("duplicate_entry") == sample.duplicate_entries


def test_rows(sample: PadchestGrSample) -> None:
    rows, _ = _run(sample.root)
    entries = json.loads((sample.root / REPORTS_FILE).read_text())
    by_image = dict(zip(sample.image_ids.values(), entries, strict=False))
    for study_id, image_id in sample.image_ids.items():
        if image_id not in rows:
            continue
        row, entry = rows[image_id], by_image[image_id]
        assert row["study_id"] == study_id and isinstance(row["patient_id"], str)
        assert row["patient_id"] == sample.patient_ids[study_id] and row["split"] == sample.splits[study_id]
        assert row["image_path"] == f"{sample.image_dir}/{image_id}"
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
    suffixed = next(s for s in sample.study_ids if s.endswith("-2"))
    assert rows[sample.image_ids[suffixed]]["study_id"] == suffixed  # a string, suffix and all


def test_the_pairing_mode_is_known(sample: PadchestGrSample) -> None:
    source = PadchestGrSource(PadchestGrOptions(root=sample.root))
    source.check()
    assert source.describe()["pairing"] == ("ids" if sample.ids else "order")
    assert bool(source.notices()) != sample.ids


def test_storage_modes(sample: PadchestGrSample) -> None:
    """path: header only, an absolute string path, an 8-bit PNG still refused; max_side 0: full-size lossless PNG."""
    paths, path_rejects = _run(sample.root, image_format="path")
    full, _ = _run(sample.root, image_size=0, image_format="jpeg")
    assert path_rejects == sample.rejected
    for image_id, row in paths.items():
        assert row["image"] == str((sample.root / row["image_path"]).absolute())  # a plain path: not an Image
        if image_id in sample.image_sizes:
            assert (row["image_width"], row["image_height"]) == sample.image_sizes[image_id]
    for image_id, row in full.items():
        assert row["image"]["bytes"].startswith(b"\x89PNG") and row["image"]["path"] == image_id


def test_values_of_the_wrong_type_are_rejected_with_the_field_named(sample: PadchestGrSample, tmp_path) -> None:
    root, _ = _copy(sample, tmp_path)
    source = PadchestGrSource(PadchestGrOptions(root=root))
    source.check()
    details = {r["id"]: r["_problem"] for r in source.records() if r["_problem"]}
    texts = sorted(d[1] for d in details.values() if d[0] == "bad_value")
    assert texts == ["findings[0].abnormal is 'false' (a JSON string), expected true or false",
                     "findings[0].boxes is 5 (a JSON int), expected a list",
                     "findings[0].labels is 'cardiomegaly' (a JSON string), expected a list"]


def test_a_malformed_box_inside_a_list_is_a_rejected_region(sample: PadchestGrSample, tmp_path) -> None:
    root, entries = _copy(sample, tmp_path)
    k, f = next((k, f) for k, e in enumerate(entries[:12]) for f in e["findings"] if f.get("boxes"))
    image_id = sample.image_ids[sample.study_ids[k]]
    f["boxes"][0] = [0.1, "x", 0.5]
    _write(root, entries)
    rows, _ = _run(root, image_format="path")
    assert rows[image_id]["rejected_regions"][0]["reason"] == "box_malformed"
    assert "region_box_malformed" in rows[image_id]["_notes"]


def test_truncated_empty_and_zero_byte_files_are_one_clear_error(sample: PadchestGrSample, tmp_path) -> None:
    root, _ = _copy(sample, tmp_path)
    reports, master = root / REPORTS_FILE, root / MASTER_TABLE
    text = reports.read_text()
    reports.write_text(text[:-300])
    with pytest.raises(CxrdataError, match=r"^grounded_reports_20240819\.json is not valid JSON \(truncated"):
        PadchestGrSource(PadchestGrOptions(root=root)).check()
    reports.write_text("")
    with pytest.raises(CxrdataError, match=r"grounded_reports_20240819\.json is empty \(0 bytes\)"):
        PadchestGrSource(PadchestGrOptions(root=root)).check()
    reports.write_text("[]")
    with pytest.raises(CxrdataError, match=r"is an empty list \(no studies\)"):
        PadchestGrSource(PadchestGrOptions(root=root)).check()
    reports.write_text(text)
    header = master.read_text().split("\n", 1)[0]
    master.write_text(header + "\n")
    with pytest.raises(CxrdataError, match=r"master_table\.csv has a header but no rows"):
        PadchestGrSource(PadchestGrOptions(root=root)).records()
    master.write_text("")
    with pytest.raises(CxrdataError, match=r"master_table\.csv is empty \(0 bytes\)"):
        PadchestGrSource(PadchestGrOptions(root=root)).check()


def test_renamed_master_column_is_one_clear_error(sample: PadchestGrSample, tmp_path: Path) -> None:
    root, _ = _copy(sample, tmp_path)
    master = root / MASTER_TABLE
    master.write_text(master.read_text().replace("PatientID", "Patient_ID", 1))
    with pytest.raises(CxrdataError, match=r"^master_table\.csv: missing column\(s\) PatientID \(found: StudyID"):
        PadchestGrSource(PadchestGrOptions(root=root)).check()


def test_entry_without_ids_in_a_file_with_ids_is_a_reject(sample: PadchestGrSample, tmp_path: Path) -> None:
    if not sample.ids:
        pytest.skip("a file without ids is paired by order")
    root, entries = _copy(sample, tmp_path)
    del entries[0]["ImageID"]
    _write(root, entries)
    _, rejects = _run(root, image_format="path")
    assert rejects["entry-0"] == "id_missing" and rejects.keys() - {"entry-0"} == sample.rejected.keys()


def _order_copy(sample: PadchestGrSample, tmp_path: Path) -> tuple[Path, list[dict]]:
    if sample.ids:
        pytest.skip("pairing by order is for files without ids")
    return _copy(sample, tmp_path)


def test_records_out_of_order_are_refused(sample: PadchestGrSample, tmp_path: Path) -> None:
    root, entries = _order_copy(sample, tmp_path)
    _write(root, [entries[3], *entries[:3], *entries[4:]])
    with pytest.raises(CxrdataError, match=r"first records do not match master_table\.csv's studies in order "
                                           r"\(record 0, study \d+"):
        PadchestGrSource(PadchestGrOptions(root=root)).records()


def test_a_missing_record_is_refused(sample: PadchestGrSample, tmp_path: Path) -> None:
    root, entries = _order_copy(sample, tmp_path)
    _write(root, entries[:-1])
    with pytest.raises(CxrdataError, match=rf"has {len(entries) - 1} records without StudyID/ImageID but "
                                           rf"master_table\.csv lists {len(entries)} studies"):
        PadchestGrSource(PadchestGrOptions(root=root)).records()


def test_records_slipping_out_of_step_later_are_refused(sample: PadchestGrSample, tmp_path: Path) -> None:
    root, entries = _order_copy(sample, tmp_path)
    informative = [i for i, e in enumerate(entries[:12]) if any(f["abnormal"] and f["labels"] for f in e["findings"])]
    k = informative[FIRST_CHECKED - 1] + 1  # the first record after the ones checked up front
    _write(root, [*entries[:k], *entries[k + 1:], entries[k]])  # one record moved to the end: the rest shift
    with pytest.raises(CxrdataError, match=r"matches master_table\.csv's study \d+ .*the records are out of step"):
        PadchestGrSource(PadchestGrOptions(root=root)).records()


def test_master_table_disagreements_are_rejects(sample: PadchestGrSample, tmp_path: Path) -> None:
    """A study whose master rows disagree on its split, a record whose ImageID is not the master table's, and an
    id written as a JSON number (digits lost on the way) are rejected, each with its reason."""
    if not sample.ids:
        pytest.skip("paired by order, the ids come from the master table")
    root, entries = _copy(sample, tmp_path)
    lines = (root / MASTER_TABLE).read_text().splitlines()
    untouched = [s for k, s in enumerate(sample.study_ids) if k not in (1, 2, 5, 6)]  # not a PNG defect either
    multi = next(s for s in untouched if sum(line.startswith(s + ",") for line in lines) > 1)
    k = next(i for i, line in enumerate(lines) if line.startswith(multi + ","))
    lines[k] = lines[k].replace(f",{sample.splits[multi]},", ",train," if sample.splits[multi] != "train" else ",test,")
    (root / MASTER_TABLE).write_text("\n".join(lines) + "\n")
    renamed = sample.study_ids[5]
    entries[5]["ImageID"] = entries[5]["ImageID"].replace(".png", "_copy.png")
    entries[6]["StudyID"] = int(entries[6]["StudyID"])
    _write(root, entries)
    _, rejects = _run(root, image_format="path")
    assert rejects[sample.image_ids[multi]] == "conflicting_rows"
    assert rejects[sample.image_ids[renamed].replace(".png", "_copy.png")] == "image_id_mismatch"
    assert rejects[sample.image_ids[sample.study_ids[6]]] == "bad_value"
