"""The ChestX-ray14 sample writer: the real layout, byte by byte, with every planted quirk."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxrdata.cli import main
from cxrdata.sample.chestxray14 import ChestXray14Sample, write_chestxray14_sample

ENTRY_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> ChestXray14Sample:
    return write_chestxray14_sample(tmp_path_factory.mktemp("cxr14") / "kaggle")


def _png_header(path: Path) -> tuple[int, int, int, int]:
    head = path.read_bytes()[:33]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24], head[25]


def test_data_entry_2017_as_first_released(sample: ChestXray14Sample) -> None:
    raw = (sample.root / "Data_Entry_2017.csv").read_bytes()
    assert raw.count(b"\r\n") == len(sample.image_ids) + 1 and b"\n" not in raw.replace(b"\r\n", b"")
    with (sample.root / "Data_Entry_2017.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert ",".join(rows[0]) == ENTRY_HEADER + "," and rows[0][-1] == ""  # 12 header cells: the last unnamed
    assert rows[0][7:11] == ["OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]"]
    assert all(len(r) == 11 for r in rows[1:])
    by_id = {r[0]: r for r in rows[1:]}
    assert tuple(by_id) == sample.image_ids
    assert by_id["00000001_001.png"][1:4] == ["Cardiomegaly|Emphysema", "001", "00000001"]
    assert by_id[sample.faults["age_in_months"]][4] == "011M"
    assert by_id[sample.faults["age_implausible"]][4] == "412Y"
    odd = (sample.faults["age_in_months"], sample.faults["age_implausible"])
    assert all(r[4] == f"{sample.ages[k]:03d}Y" for k, r in by_id.items() if k not in odd)
    assert sample.ages[odd[0]] == 0 and sample.ages[odd[1]] is None  # completed years; implausible
    assert {r[5] for r in rows[1:]} == {"M", "F"} and {r[6] for r in rows[1:]} <= {"PA", "AP"}


def test_bbox_list_and_split_lists(sample: ChestXray14Sample) -> None:
    lines = (sample.root / "BBox_List_2017.csv").read_text().splitlines()
    assert lines[0] == "Image Index,Finding Label,Bbox [x,y,w,h],,,"  # 9 header cells, rows have 6
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) == sample.box_rows == 11 and all(len(r) == 6 for r in rows)
    dup = [r for r in rows if r[0] == sample.faults["duplicate_box"]]
    assert len(dup) == 2 and dup[0] == dup[1]
    assert [r[1] for r in rows if r[0] == sample.faults["infiltrate"]] == ["Effusion", "Infiltrate"]
    assert "Infiltration" in sample.labels[sample.faults["infiltrate"]]
    assert [r for r in rows if r[0] == sample.faults["orphan_box"]] == [
        [sample.faults["orphan_box"], "Nodule", "400.5", "300.25", "60", "50"]]
    assert sample.faults["orphan_box"] not in sample.image_ids
    for r in rows:
        x, y, w, h = map(float, r[2:])
        assert x >= 0 and y >= 0 and x + w <= 1024 and y + h <= 1024
    lists = {}
    for split, name in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        raw = (sample.root / name).read_bytes()
        assert not raw.endswith(b"\n") and b"\r" not in raw  # like the release: no newline after the last line
        lists[split] = raw.decode().split("\n")
        assert lists[split] == sorted(lists[split])
    assert not set(lists["train"]) & set(lists["test"])
    assert {i for i, s in sample.splits.items() if s} == set(lists["train"]) | set(lists["test"])
    assert sample.splits[sample.faults["unlisted"]] is None and sample.faults["unlisted"] in sample.boxes
    assert {r[0] for r in rows} - {sample.faults["orphan_box"], sample.faults["unlisted"]} <= set(lists["test"])
    patients = {split: {i[:8] for i in names} for split, names in lists.items()}
    assert not patients["train"] & patients["test"]


def test_pngs_in_kaggle_folders(sample: ChestXray14Sample) -> None:
    found = sorted(p.relative_to(sample.root).as_posix() for p in sample.root.rglob("*.png"))
    assert found == sorted(p.relative_to(sample.root).as_posix() for p in sample.image_files.values())
    assert {f.split("/")[0] for f in found} == {"images_001", "images_002", "images_003"}
    assert all(f.split("/")[1] == "images" for f in found)
    assert sample.faults["missing_image"] not in sample.image_files
    assert set(sample.image_files) == set(sample.image_ids) - {sample.faults["missing_image"]}
    for name, path in sample.image_files.items():
        assert path.name == name
        # 8-bit, 1024 x 1024; gray (colour type 0), the RGBA one colour type 6
        assert _png_header(path) == (1024, 1024, 8, 6 if name == sample.faults["rgba"] else 0)
    assert sample.summary() == (f"wrote 15 Data_Entry rows (8 train_val, 6 test), 11 box rows and 14 PNGs "
                                f"(kaggle layout) to {sample.root}")


def test_nih_layout_with_the_v2020_table(tmp_path: Path) -> None:
    sample = write_chestxray14_sample(tmp_path / "nih", layout="nih", data_entry="v2020", size=256)
    assert sorted(p.name for p in sample.root.iterdir()) == [
        "BBox_List_2017.csv", "Data_Entry_2017_v2020.csv", "images", "test_list.txt", "train_val_list.txt"]
    raw = sample.data_entry.read_bytes()
    assert b"\r" not in raw and raw.split(b"\n")[0].decode() == ENTRY_HEADER
    rows = list(csv.reader(raw.decode().splitlines()))
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["00000001_001.png"][1:5] == ["Cardiomegaly|Emphysema", "1", "1", str(sample.ages["00000001_001.png"])]
    assert all(r[4].isdigit() for r in rows[1:]) and None not in sample.ages.values()
    assert "0.14300000000000002" in {r[9] for r in rows[1:]}  # v2020's binary-float noise
    assert all(p.parent == sample.root / "images" for p in sample.image_files.values())
    assert _png_header(sample.image_files["00000001_000.png"])[:2] == (256, 256)


def test_byte_identical_for_the_same_arguments(tmp_path: Path) -> None:
    a = write_chestxray14_sample(tmp_path / "a", size=128)
    b = write_chestxray14_sample(tmp_path / "b", size=128)
    c = write_chestxray14_sample(tmp_path / "c", size=128, seed=1)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    assert (a.root / "BBox_List_2017.csv").read_bytes() != (c.root / "BBox_List_2017.csv").read_bytes()
    with pytest.raises(ValueError, match="layout is kaggle or nih"):
        write_chestxray14_sample(tmp_path / "d", layout="flat")


def test_sample_data_command(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = CliRunner().invoke(main, ["sample-data", "chestxray14", "--out", str(out), "--layout", "nih",
                                       "--data-entry", "v2020"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (out / "Data_Entry_2017_v2020.csv").is_file() and len(list((out / "images").glob("*.png"))) == 14
    assert "wrote 15 Data_Entry rows" in result.output and f"cxrdata build chestxray14 --root {out}" in result.output
