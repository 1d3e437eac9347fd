"""VinDr-CXR on a hostile download: every input id ends in the output or the rejects, every CSV row is
accounted for, unsafe ids never name a file, and broken CSVs are one error line (issue 12)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records, read_rejects

from cxrdata.cli import main
from cxrdata.sample.vindr import VindrSample, write_vindr_sample

CSVS = ("annotations_train.csv", "annotations_test.csv", "image_labels_train.csv", "image_labels_test.csv")


@dataclass(frozen=True)
class Built:
    sample: VindrSample
    out: Path
    manifest: dict


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> VindrSample:
    return write_vindr_sample(tmp_path_factory.mktemp("vindr-faults") / "vindr", images=8, test_images=4, seed=0,
                              faults=True)


@pytest.fixture(scope="module")
def built(sample: VindrSample, tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("vindr-faults-build") / "out"
    build_with("vindr", out, root=sample.root, image_size=32, max_reject_share=1)
    return Built(sample, out, json.loads((out / "manifest.json").read_text()))


def _csv(sample: VindrSample, name: str) -> list[dict[str, str]]:
    with (sample.root / "annotations" / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _reject_rows(out: Path) -> dict[str, dict]:
    return {r["record_id"]: r for p in sorted((out / "rejects" / "vindr").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()}


def _input_ids(sample: VindrSample) -> dict[str, str]:
    """image_id -> split of every id any of the four CSVs names (read here with the csv module)."""
    ids = {}
    for name in CSVS:
        split = "train" if name.endswith("_train.csv") else "test"
        ids.update({row["image_id"]: split for row in _csv(sample, name)})
    return ids


def test_every_input_id_is_written_or_rejected_once(built: Built) -> None:
    sample, faults = built.sample, built.sample.faults
    written, rejected = read_records(built.out, "vindr"), read_rejects(built.out, "vindr")
    inputs = _input_ids(sample)
    assert not set(written) & set(rejected)
    assert set(written) | set(rejected) == set(inputs)
    assert rejected == {
        sample.no_pixel_data: "dicom_no_pixels",
        faults["image_labels_conflict"]: "image_labels_conflict",
        faults["label_invalid"]: "label_invalid",
        faults["bad_id_dotdot"]: "unsafe_id",
        faults["bad_id_slash"]: "unsafe_id",
    }
    counts = built.manifest["configs"]["vindr"]["counts"]
    per_split = Counter(inputs.values())
    bad = Counter(inputs[i] for i in rejected)
    assert counts["splits"] == {s: {"read": per_split[s], "written": per_split[s] - bad[s], "rejected": bad[s]}
                                for s in ("test", "train")}
    assert counts["notes"] == {"annotation_row_duplicate": 2, "label_row_duplicate": 1, "label_missing": 1,
                               "dicom_transfer_syntax_inferred": 1, "region_box_out_of_bounds": 1}


def test_unsafe_ids_never_name_a_file(built: Built) -> None:
    """``../test/<id>`` is a real DICOM of the test split: the old reader wrote it as a train record."""
    faults = built.sample.faults
    assert (built.sample.root / "train" / f"{faults['bad_id_dotdot']}.dicom").resolve().is_file()
    details = _reject_rows(built.out)
    assert details[faults["bad_id_dotdot"]]["detail"] == (
        f"image_id '{faults['bad_id_dotdot']}' would name a path outside its folder")
    assert details[faults["bad_id_dotdot"]]["stage"] == "vindr-row"
    assert all("/" not in i and ".." not in i for i in read_records(built.out, "vindr"))


def test_every_annotation_row_is_a_box_a_rejected_box_a_no_finding_or_a_counted_repeat(built: Built) -> None:
    sample, written = built.sample, read_records(built.out, "vindr")
    for name, split in (("annotations_train.csv", "train"), ("annotations_test.csv", "test")):
        rows = _csv(sample, name)
        for image_id, row in written.items():
            if row["split"] != split:
                continue
            mine = [r for r in rows if r["image_id"] == image_id]
            distinct = {tuple(r.values()) for r in mine}
            boxes = [r for r in mine if r["x_min"]]
            assert len(row["regions"]) + len(row["rejected_regions"]) == len({tuple(r.values()) for r in boxes})
            assert len(row["no_finding_readers"]) == len(mine) - len(boxes)  # "No finding" rows are never repeated
            repeats = len(mine) - len(distinct)
            assert repeats == (1 if image_id in (sample.faults["annotation_row_duplicate"],
                                                 sample.faults["test_annotation_row_duplicate"]) else 0)


def test_label_rows_one_per_reader_and_the_conflict_names_the_column(built: Built) -> None:
    sample, written = built.sample, read_records(built.out, "vindr")
    duplicated = written[sample.faults["label_row_duplicate"]]
    assert [lab["reader"] for lab in duplicated["image_labels"]] == list(sample.readers[duplicated["id"]])
    details = {i: r["detail"] for i, r in _reject_rows(built.out).items()}
    conflict = sample.faults["image_labels_conflict"]
    assert details[conflict] == f"reader {sample.readers[conflict][0]} has two label rows differing in COPD"
    invalid = sample.faults["label_invalid"]
    assert details[invalid] == f"reader {sample.readers[invalid][0]}, Edema: 'yes' is not 0 or 1"


def _tree_without_images(sample: VindrSample, root: Path) -> Path:
    shutil.copytree(sample.root / "annotations", root / "annotations")
    (root / "train").mkdir()
    (root / "test").mkdir()
    return root


@pytest.mark.parametrize("name", CSVS)
@pytest.mark.parametrize(("content", "message"), [(b"", "is empty (0 bytes)"),
                                                  (b"\n", "has no header line")])
def test_empty_csv_is_one_error_line(sample: VindrSample, tmp_path: Path, name: str, content: bytes,
                                     message: str) -> None:
    root = _tree_without_images(sample, tmp_path / "vindr")
    (root / "annotations" / name).write_bytes(content)
    result = CliRunner().invoke(main, ["build", "vindr", "--root", str(root), "--out", str(tmp_path / "out"),
                                       "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line == f"error: {root / 'annotations' / name} {message}" + (": download it again" if content == b""
                                                                        else " (an empty table): download it again")
