"""The ChestX-ray14 reader on the synthetic sample: every Data_Entry, box and list row accounted for, id by id."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cxrdata_testing import plan_of, run_plan

from cxrdata.errors import CxrdataError
from cxrdata.sample.chestxray14 import ChestXray14Sample, write_chestxray14_sample

CLASS_OF = {"Infiltrate": "Infiltration"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> ChestXray14Sample:
    return write_chestxray14_sample(tmp_path_factory.mktemp("cxr14") / "kaggle")


@pytest.fixture(scope="module")
def v2020(tmp_path_factory: pytest.TempPathFactory) -> ChestXray14Sample:
    return write_chestxray14_sample(tmp_path_factory.mktemp("cxr14") / "nih", layout="nih", data_entry="v2020",
                                    size=256)


def _run(root: Path, **options: object) -> tuple[dict, dict]:
    return run_plan(plan_of("chestxray14", root=root, **{"image_size": 64, **options}))


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _copy(sample: ChestXray14Sample, tmp_path: Path) -> Path:
    """The sample with its PNGs hard-linked, to break one file at a time."""
    return Path(shutil.copytree(sample.root, tmp_path / "copy", copy_function=os.link))


def _rewrite(path: Path, edit) -> None:
    rows = _csv(path)
    path.unlink()  # the hard link: never write through to the sample
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(edit(rows))


def test_every_row_is_written_rejected_or_counted(sample: ChestXray14Sample) -> None:
    plan = plan_of("chestxray14", root=sample.root, image_size=64)
    rows, rejects = run_plan(plan)
    faults = sample.faults
    assert {k: r.reason for k, r in rejects.items()} == {faults["unlisted"]: "split_missing",
                                                        faults["missing_image"]: "image_missing"}
    assert set(rows) | set(rejects) == set(sample.image_ids) and not set(rows) & set(rejects)
    assert plan.source.excluded == {"box_row_without_data_entry": 1}  # the orphan box row
    kept = sum(len(r["regions"]) + len(r["rejected_regions"]) for r in rows.values())
    lost = len(sample.boxes[faults["unlisted"]])  # went with the rejected image
    assert kept + lost + 1 + 1 == sample.box_rows  # + the repeated row (kept once) + the orphan
    assert rows[faults["duplicate_box"]]["_notes"].count("box_row_duplicate") == 1
    assert "png_source_rgba" in rows[faults["rgba"]]["_notes"]


def test_columns_are_the_table_typed(sample: ChestXray14Sample) -> None:
    rows, _ = _run(sample.root)
    table = {r[0]: r for r in _csv(sample.data_entry)[1:]}
    for name, row in rows.items():
        cells = table[name]
        assert row["image_index"] == name and row["split"] == sample.splits[name]
        assert row["labels"] == cells[1].split("|") == list(sample.labels[name])
        assert (row["follow_up"], row["patient_id"]) == (int(cells[2]), int(cells[3]))
        assert (row["sex"], row["view"], row["age"]) == (cells[5], cells[6], sample.ages[name])
        assert (row["acquired_width"], row["acquired_height"]) == (int(cells[7]), int(cells[8]))
        assert row["acquired_pixel_spacing"] == [float(cells[9]), float(cells[10])]
        assert (sample.root / row["image_path"]) == sample.image_files[name]
        assert (row["original_width"], row["original_height"], row["image_width"]) == (1024, 1024, 64)
        assert row["image"]["bytes"].startswith(b"\xff\xd8") and row["image"]["path"] == name.replace(".png", ".jpg")
    assert rows[sample.faults["age_in_months"]]["_notes"] == ["age_in_months"]
    assert rows[sample.faults["age_implausible"]]["age"] is None
    assert rows[sample.faults["age_implausible"]]["_notes"] == ["age_implausible"]


def test_boxes_are_canonical_on_the_1024_grid(sample: ChestXray14Sample) -> None:
    rows, _ = _run(sample.root)
    for name, row in rows.items():
        written = sample.boxes.get(name, [])
        assert [r["label"] for r in row["regions"]] == [CLASS_OF.get(label, label) for label, _ in written]
        for region, (_, (x, y, w, h)) in zip(row["regions"], written, strict=True):
            assert region["box"] == pytest.approx([x / 1024, y / 1024, (x + w) / 1024, (y + h) / 1024], abs=1e-12)
            assert region["phrase"] == region["label"] and region["reader"] is None
            assert region["source"] == "chestx-ray14" and region["sentence"] is None and region["attributes"] == []
        assert row["rejected_regions"] == []
        assert row["_classes_present"] == frozenset(r["label"] for r in row["regions"])
    assert rows[sample.faults["infiltrate"]]["_notes"] == ["box_label_respelled"]


def test_rgba_png_is_made_gray_exactly(sample: ChestXray14Sample) -> None:
    rows, _ = _run(sample.root, image_size=0, image_format="png")
    name = sample.faults["rgba"]
    stored = cv2.imdecode(np.frombuffer(rows[name]["image"]["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
    source = cv2.imread(str(sample.image_files[name]), cv2.IMREAD_UNCHANGED)
    assert source.shape == (1024, 1024, 4) and stored.shape == (1024, 1024)
    assert np.array_equal(stored, source[:, :, 0])
    paths, _ = _run(sample.root, image_format="path")
    assert paths[name]["image"] == {"bytes": None, "path": str(sample.image_files[name].resolve())}
    assert "png_source_rgba" in paths[name]["_notes"]


def test_v2020_table_and_nih_folders(v2020: ChestXray14Sample) -> None:
    plan = plan_of("chestxray14", root=v2020.root, image_size=64)
    rows, rejects = run_plan(plan)
    assert set(rejects) == {v2020.faults["unlisted"], v2020.faults["missing_image"]}
    assert all(rows[n]["age"] == v2020.ages[n] for n in rows) and None not in v2020.ages.values()
    assert all(r["image_path"] == f"images/{n}" for n, r in rows.items())
    assert all("image_not_1024" in r["_notes"] for r in rows.values())  # a resized copy: boxes stay on 1024
    name = v2020.faults["infiltrate"]
    (x, y, w, h) = v2020.boxes[name][0][1]
    assert rows[name]["regions"][0]["box"] == pytest.approx([x / 1024, y / 1024, (x + w) / 1024, (y + h) / 1024])
    assert plan.source.versions() == {"chestx-ray14": {"version": "v2020",
                                                       "evidence": "labels read from Data_Entry_2017_v2020.csv"}}
    assert plan.options["data_entry"] == "Data_Entry_2017_v2020.csv"


def test_both_tables_present(sample: ChestXray14Sample, v2020: ChestXray14Sample, tmp_path: Path) -> None:
    root = _copy(sample, tmp_path)
    shutil.copy(v2020.data_entry, root / v2020.data_entry.name)
    plan = plan_of("chestxray14", root=root)
    assert plan.options["data_entry"] == "Data_Entry_2017_v2020.csv"
    assert plan.source.notices() == ["labels read from Data_Entry_2017_v2020.csv; Data_Entry_2017.csv is also "
                                     "there and was not read (--data-entry picks the table)"]
    chosen = plan_of("chestxray14", root=root, data_entry=root / "Data_Entry_2017.csv")
    assert chosen.options["data_entry"] == "Data_Entry_2017.csv"
    assert chosen.source.versions()["chestx-ray14"]["version"] == "2017"


def test_row_faults(v2020: ChestXray14Sample, tmp_path: Path) -> None:
    root = _copy(v2020, tmp_path)
    table = root / "Data_Entry_2017_v2020.csv"
    edits = {"00000001_000.png": {1: "Effusion|Effusion"}, "00000001_001.png": {1: "No Finding|Effusion"},
             "00000001_002.png": {1: "Pneumonitis"}, "00000002_000.png": {3: "12"}, "00000003_000.png": {4: "005D"},
             "00000003_001.png": {4: "old"}, "00000004_000.png": {6: "LL"}, "00000005_002.png": {5: "O"},
             "00000006_001.png": {8: "wide"}}

    def edit(rows: list[list[str]]) -> list[list[str]]:
        rows[0] = ["Patient Sex" if c == "Patient Gender" else c for c in rows[0]] + [""]
        out = [rows[0]]
        for row in rows[1:]:
            for col, value in edits.get(row[0], {}).items():
                row[col] = value
            out.append([*row, "x" if row[0] == "00000005_001.png" else ""])
            if row[0] == "00000007_000.png":
                out.append(list(out[-1]))  # a verbatim repeat: kept once
            if row[0] == "00000006_000.png":
                out.append([*row[:4], "99", *row[5:], ""])  # a different second row
        return out

    _rewrite(table, edit)
    test_list = root / "test_list.txt"
    test_list.unlink()
    test_list.write_text("\n".join([*(v2020.root / "test_list.txt").read_text().split("\n"), "00000001_000.png",
                                    "00000005_000.png", "00000042_000.png"]))
    rows, rejects = _run(root)
    assert {k: r.reason for k, r in rejects.items()} == {
        "00000001_000.png": "split_conflict", "00000001_001.png": "labels_conflict",
        "00000001_002.png": "label_unknown", "00000002_000.png": "patient_id_mismatch",
        "00000003_001.png": "age_invalid", "00000004_000.png": "view_invalid", "00000005_002.png": "sex_invalid",
        "00000005_001.png": "extra_cells", "00000006_000.png": "data_entry_conflict",
        "00000006_001.png": "acquired_size_invalid", v2020.faults["unlisted"]: "split_missing",
        v2020.faults["missing_image"]: "image_missing"}
    assert "Patient Age" in rejects["00000006_000.png"].detail
    assert rows["00000003_000.png"]["age"] == 0 and "age_in_days" in rows["00000003_000.png"]["_notes"]
    assert rows["00000005_000.png"]["_notes"].count("split_list_line_duplicate") == 1
    assert rows["00000007_000.png"]["_notes"].count("data_entry_row_duplicate") == 1
    assert rows["00000005_000.png"]["sex"] in ("M", "F")  # read from the column spelled Patient Sex
    plan = plan_of("chestxray14", root=root)
    plan.records()
    assert plan.source.excluded == {"box_row_without_data_entry": 1, "list_entry_without_data_entry": 1}


def test_box_and_file_faults(v2020: ChestXray14Sample, tmp_path: Path) -> None:
    root = _copy(v2020, tmp_path)
    _rewrite(root / "BBox_List_2017.csv", lambda rows: [*rows, ["00000001_000.png", "Hernia", "1", "2", "3", "4"],
                                                        ["00000001_001.png", "Cardiomegaly", "1", "2", "3", "4", "9"],
                                                        ["00000001_002.png", "Pneumothorax", "1", "2", "", "4"]])
    os.makedirs(root / "images_001" / "images")
    os.link(root / "images" / "00000002_000.png", root / "images_001" / "images" / "00000002_000.png")
    rows, rejects = _run(root)
    assert rejects["00000002_000.png"].reason == "image_duplicate"
    assert [(r["label"], r["reason"]) for r in rows["00000001_000.png"]["rejected_regions"]] == [
        ("Hernia", "box_label_unknown")]
    assert [(r["label"], r["reason"]) for r in rows["00000001_001.png"]["rejected_regions"]] == [
        ("Cardiomegaly", "box_row_malformed")]
    assert [(r["label"], r["reason"]) for r in rows["00000001_002.png"]["rejected_regions"]] == [
        ("Pneumothorax", "box_malformed")]
    assert "box_label_not_in_labels" in rows["00000001_002.png"]["_notes"]  # its labels: Cardiomegaly, Effusion
    assert all(not rows[n]["regions"] for n in ("00000001_000.png", "00000001_001.png", "00000001_002.png"))


def test_filters_count_what_they_leave_out(sample: ChestXray14Sample) -> None:
    plan = plan_of("chestxray14", root=sample.root, splits="test", boxed_only=True)
    records, excluded = plan.records()
    boxed_test = {n for n in sample.boxes if sample.splits.get(n) == "test"}
    assert {r["id"] for r in records} == boxed_test | {sample.faults["unlisted"]}  # the unlisted one: rejected later
    train = sum(1 for s in sample.splits.values() if s == "train")
    assert excluded == {"box_row_without_data_entry": 1, "image_in_other_split": train,
                        "image_without_box": len(sample.image_ids) - train - len(boxed_test) - 1}


def test_whole_input_problems_are_one_line(sample: ChestXray14Sample, tmp_path: Path) -> None:
    root = _copy(sample, tmp_path)
    plan = plan_of("chestxray14", root=root)
    (root / "test_list.txt").unlink()
    with pytest.raises(CxrdataError, match=r"test_list.txt does not exist"):
        plan.source.check()
    (root / "test_list.txt").write_text("")
    for folder in root.glob("images_*"):
        shutil.rmtree(folder)
    with pytest.raises(CxrdataError, match="no ChestX-ray14 image folder"):
        plan.source.check()
    table = root / "Data_Entry_2017.csv"
    text = table.read_text()
    table.unlink()
    table.write_text(text.replace("OriginalImage[Width,Height]", '"OriginalImage[Width,Height]"', 1))
    with pytest.raises(CxrdataError, match=r"missing column\(s\) OriginalImage\[Width, Height\]"):
        plan.source.check()
    table.unlink()
    with pytest.raises(CxrdataError, match=r"expected Data_Entry_2017_v2020\.csv or Data_Entry_2017\.csv"):
        plan_of("chestxray14", root=root).source.check()
