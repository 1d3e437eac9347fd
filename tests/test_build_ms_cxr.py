"""`build ms-cxr`: v1.0.0 / v1.1.0 detected from the header, boxes grouped per (dicom_id, phrase)."""

from __future__ import annotations

import shutil
from collections import defaultdict

import datasets
import polars as pl
import pytest
from cxrdata_testing import read_records

from cxrdata.boxes import to_xywh_pixels
from cxrdata.errors import CxrdataError
from cxrdata.pipeline.build import BuildOptions, build
from cxrdata.sources.ms_cxr import MsCxrSource, detect_version


def csv_groups(path) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in pl.read_csv(path, infer_schema=False).iter_rows(named=True):
        groups[(row["dicom_id"], row["label_text"])].append(row)
    return groups


@pytest.fixture(scope="module", params=["1.0.0", "1.1.0"])
def ms_cxr_build(request, mimic_sample, tmp_path_factory):
    version = request.param
    csv = mimic_sample.mscxr_csv[version]
    out = tmp_path_factory.mktemp(f"ms-cxr-{version}") / "out"
    result = build([MsCxrSource(root=csv.parent, mimic_root=mimic_sample.root)],
                   BuildOptions(out=out, workers=1, quiet=True))
    return version, csv, result


def test_version_is_read_from_the_header(ms_cxr_build):
    version, csv, _ = ms_cxr_build
    assert detect_version(pl.read_csv(csv, n_rows=0).columns, csv) == version


def test_one_record_per_phrase_with_all_its_boxes(mimic_sample, ms_cxr_build):
    version, csv, result = ms_cxr_build
    groups = csv_groups(csv)
    records = read_records(result.out, "ms-cxr")
    totals = result.results[0].totals
    assert totals.read == len(groups) == mimic_sample.mscxr_groups[version]
    by_key = {(r["dicom_id"], r["phrase"]): r for r in records.values()}
    assert len(by_key) + totals.rejected == len(groups)
    assert sum(len(r["boxes"]) for r in records.values()) <= mimic_sample.mscxr_rows[version]
    for key, record in by_key.items():
        rows = groups[key]
        assert record["ms_cxr_version"] == version
        assert record["category"] == rows[0]["category_name"]
        assert (record["original_width"], record["original_height"]) == (int(rows[0]["image_width"]),
                                                                          int(rows[0]["image_height"]))
        for box, row in zip(record["boxes"], rows, strict=True):
            pixels = to_xywh_pixels(box, record["original_width"], record["original_height"])
            assert pixels == pytest.approx([int(row[k]) for k in "xywh"], abs=0.01)
        path = rows[0]["path"]
        assert record["image_path"] == path
        assert (record["subject_id"], record["study_id"]) == (int(path.split("/")[2][1:]), int(path.split("/")[3][1:]))


def test_split_comes_from_the_csv_or_from_mimic(mimic_sample, ms_cxr_build):
    version, csv, result = ms_cxr_build
    records = read_records(result.out, "ms-cxr").values()
    if version == "1.1.0":
        truth = {r["dicom_id"]: r["split"] for r in pl.read_csv(csv, infer_schema=False).iter_rows(named=True)}
        aliases = {"val": "validation", "train": "train", "test": "test"}
    else:
        split_csv = mimic_sample.root / "mimic-cxr-2.0.0-split.csv.gz"
        truth = {r["dicom_id"]: r["split"] for r in pl.read_csv(split_csv, infer_schema=False).iter_rows(named=True)}
        aliases = {"validate": "validation", "train": "train", "test": "test"}
    for record in records:
        assert record["split"] == aliases[truth[record["dicom_id"]]]


def test_boxes_load_as_nested_floats(ms_cxr_build):
    _, _, result = ms_cxr_build
    ds = datasets.load_dataset(str(result.out))
    split = next(iter(ds.values()))
    assert split.features["boxes"] == datasets.List(datasets.List(datasets.Value("float32"), length=4))
    row = split[0]
    assert all(len(b) == 4 and 0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1 for b in row["boxes"])
    assert row["image"].size == (row["image_width"], row["image_height"])


def _copy_csv(mimic_sample, tmp_path, edit):
    folder = tmp_path / "ms-cxr"
    folder.mkdir()
    source = mimic_sample.mscxr_csv["1.1.0"]
    frame = edit(pl.read_csv(source, infer_schema=False))
    frame.write_csv(folder / source.name)
    return folder


def test_a_path_escaping_the_root_and_bad_boxes_are_rejected(mimic_sample, tmp_path):
    def edit(frame: pl.DataFrame) -> pl.DataFrame:
        first, second, third = frame["dicom_id"].unique(maintain_order=True).to_list()[:3]
        return frame.with_columns(
            pl.when(pl.col("dicom_id") == first).then(pl.lit("../../../../etc/passwd")).otherwise(pl.col("path"))
            .alias("path"),
            pl.when(pl.col("dicom_id") == second).then(pl.lit("0")).otherwise(pl.col("w")).alias("w"),
            pl.when(pl.col("dicom_id") == third).then(pl.lit("99999")).otherwise(pl.col("x")).alias("x"),
        )

    folder = _copy_csv(mimic_sample, tmp_path, edit)
    result = build([MsCxrSource(root=folder, mimic_root=mimic_sample.root)],
                   BuildOptions(out=tmp_path / "out", workers=1, quiet=True))
    reasons = result.results[0].totals.reasons
    assert reasons["path_escapes_root"] >= 1
    assert reasons["box_empty"] >= 1
    assert reasons["box_out_of_bounds"] >= 1
    totals = result.results[0].totals
    assert totals.read == totals.written + totals.rejected


def test_a_renamed_column_is_refused_up_front(mimic_sample, tmp_path):
    folder = _copy_csv(mimic_sample, tmp_path, lambda f: f.rename({"label_text": "phrase"}))
    with pytest.raises(CxrdataError, match="missing column\\(s\\) label_text"):
        build([MsCxrSource(root=folder, mimic_root=mimic_sample.root)],
              BuildOptions(out=tmp_path / "out", workers=1, quiet=True))


def test_v1_0_without_the_mimic_split_file_is_refused(mimic_sample, tmp_path):
    images = tmp_path / "mimic"
    shutil.copytree(mimic_sample.root / "files", images / "files")
    with pytest.raises(CxrdataError, match="split"):
        build([MsCxrSource(root=mimic_sample.mscxr_csv["1.0.0"].parent, mimic_root=images)],
              BuildOptions(out=tmp_path / "out", workers=1, quiet=True))
