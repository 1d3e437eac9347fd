"""`build ms-cxr`: v1.0.0 / v1.1.0 detected from the header, boxes grouped per (dicom_id, category, phrase),
the real v1.1.0 quirks (a phrase under two categories, lower-case and DEID phrases with commas), duplicated and
conflicting rows, every spelling of --root, a symlinked image folder, and unreadable CSVs."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import datasets
import polars as pl
import pytest
from click.testing import CliRunner
from cxrdata_testing import build_with, read_records, read_rejects

from cxrdata.boxes import to_xywh_pixels
from cxrdata.cli import main
from cxrdata.errors import CxrdataError
from cxrdata.sample.mscxr import DEID_PREFIX
from cxrdata.sources.ms_cxr import MsCxrOptions, MsCxrSource, detect_version

KEY = ("dicom_id", "category_name", "label_text")


def csv_groups(path: Path) -> dict[str, list[dict]]:
    """Expected record id -> the group's rows, computed here from the CSV: ``<dicom_id>/<k>``, k counting the
    image's (category, phrase) groups in order of first appearance."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in pl.read_csv(path, infer_schema=False).iter_rows(named=True):
        groups[tuple(row[k] for k in KEY)].append(row)
    ids, seen = {}, defaultdict(int)
    for key, rows in groups.items():
        ids[f"{key[0]}/{seen[key[0]]}"] = rows
        seen[key[0]] += 1
    return ids


def distinct(rows: list[dict]) -> list[dict]:
    """The rows without verbatim repeats, in CSV order."""
    return list({tuple(r.items()): r for r in rows}.values())


@pytest.fixture(scope="module", params=["1.0.0", "1.1.0"])
def ms_cxr_build(request, mimic_sample, tmp_path_factory):
    version = request.param
    csv = mimic_sample.mscxr_csv[version]
    out = tmp_path_factory.mktemp(f"ms-cxr-{version}") / "out"
    result = build_with("ms-cxr", out, root=csv.parent, mimic_root=mimic_sample.root)
    return version, csv, result


def test_version_is_read_from_the_header(ms_cxr_build):
    version, csv, _ = ms_cxr_build
    assert detect_version(pl.read_csv(csv, n_rows=0).columns, csv) == version


def test_one_record_per_phrase_and_category_with_all_its_boxes(mimic_sample, ms_cxr_build):
    version, csv, result = ms_cxr_build
    groups = csv_groups(csv)
    records = read_records(result.out, "ms-cxr")
    totals = result.results[0].totals
    assert totals.read == len(groups) == mimic_sample.mscxr_groups[version]
    assert set(records) == set(groups) and totals.rejected == 0
    for record_id, record in records.items():
        rows = distinct(groups[record_id])
        assert (record["dicom_id"], record["category"], record["phrase"]) == tuple(rows[0][k] for k in KEY)
        assert record["ms_cxr_version"] == version
        assert (record["original_width"], record["original_height"]) == (int(rows[0]["image_width"]),
                                                                          int(rows[0]["image_height"]))
        assert len(record["boxes"]) == len(rows)
        for box, row in zip(record["boxes"], rows, strict=True):
            pixels = to_xywh_pixels(box, record["original_width"], record["original_height"])
            assert pixels == pytest.approx([int(row[k]) for k in "xywh"], abs=0.01)
        path = rows[0]["path"]
        assert record["image_path"] == path
        assert (record["subject_id"], record["study_id"]) == (int(path.split("/")[2][1:]), int(path.split("/")[3][1:]))


def test_a_phrase_under_two_categories_stays_two_records(ms_cxr_build):
    _, csv, result = ms_cxr_build
    records = read_records(result.out, "ms-cxr")
    by_phrase = defaultdict(set)
    for record_id, rows in csv_groups(csv).items():
        by_phrase[(rows[0]["dicom_id"], rows[0]["label_text"])].add(record_id)
    twice = [ids for ids in by_phrase.values() if len(ids) > 1]
    assert len(twice) == 1
    for ids in twice:
        first, second = (records[i] for i in sorted(ids))
        assert {first["category"], second["category"]} == {"Edema", "Consolidation"}
        assert first["phrase"] == second["phrase"] and first["id"] != second["id"]
        assert first["boxes"] == second["boxes"] and len(first["boxes"]) == 2  # not four boxes, not merged


def test_duplicated_row_is_one_box_and_a_note(mimic_sample, ms_cxr_build):
    version, csv, result = ms_cxr_build
    rows = pl.read_csv(csv, infer_schema=False)
    assert rows.height - rows.unique().height == mimic_sample.mscxr_duplicate_rows[version] == 1
    assert result.results[0].totals.notes["duplicate_row"] == 1
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["configs"]["ms-cxr"]["counts"]["notes"]["duplicate_row"] == 1
    records = read_records(result.out, "ms-cxr")
    repeated = rows.filter(rows.is_duplicated()).row(0, named=True)
    [record] = [r for r in records.values() if (r["dicom_id"], r["phrase"]) == (repeated["dicom_id"],
                                                                               repeated["label_text"])]
    assert len(record["boxes"]) == 2  # the group's two boxes, the repeat not added


def test_phrases_are_kept_verbatim(ms_cxr_build):
    _, csv, result = ms_cxr_build
    phrases = {r["phrase"] for r in read_records(result.out, "ms-cxr").values()}
    assert phrases == set(pl.read_csv(csv, infer_schema=False)["label_text"])
    assert "right basilar plate-like atelectasis" in phrases  # lower case kept
    assert f"{DEID_PREFIX}dense lingular consolidation" in phrases  # placeholder and comma kept
    assert f'"{DEID_PREFIX}dense' in csv.read_text()  # the CSV quotes the phrase with a comma


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
    return folder / source.name


def _build(csv_or_root: Path, mimic_root: Path, out: Path):
    return build_with("ms-cxr", out, root=csv_or_root, mimic_root=mimic_root, image_format="path",
                      max_reject_share=1)


def test_every_group_is_written_or_rejected_id_by_id(mimic_sample, tmp_path):
    """Defects planted in a copy: a path out of the root, an empty and an out-of-image box, an id that climbs out,
    and a conflicting duplicate (same box, another image size); every CSV group is in the output or the rejects."""
    frame = pl.read_csv(mimic_sample.mscxr_csv["1.1.0"], infer_schema=False)
    repeated = frame.filter(frame.is_duplicated())["dicom_id"][0]  # keep the sample's duplicated row usable
    images = [i for i in frame["dicom_id"].unique(maintain_order=True) if i != repeated]
    escape, empty, outside, evil, conflict = images[:5]

    def edit(frame: pl.DataFrame) -> pl.DataFrame:
        def where(dicom_id, column, value):
            return pl.when(pl.col("dicom_id") == dicom_id).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        frame = frame.with_columns(where(escape, "path", "../../../../etc/passwd"))
        frame = frame.with_columns(where(empty, "w", "0")).with_columns(where(outside, "x", "99999"))
        frame = frame.with_columns(where(evil, "path", "files/p10/../../evil.jpg")).with_columns(
            where(evil, "dicom_id", "../../evil"))
        wider = frame.filter(pl.col("dicom_id") == conflict).head(1).with_columns(
            (pl.col("image_width").cast(pl.Int64) + 1).cast(pl.String))
        return pl.concat([frame, wider])

    csv = _copy_csv(mimic_sample, tmp_path, edit)
    result = _build(csv.parent, mimic_sample.root, tmp_path / "out")
    groups = csv_groups(csv)
    written, rejected = read_records(tmp_path / "out", "ms-cxr"), read_rejects(tmp_path / "out", "ms-cxr")
    assert set(written) | set(rejected) == set(groups) and not set(written) & set(rejected)
    expected = {escape: "path_escapes_root", empty: "box_empty", outside: "box_out_of_bounds",
                "../../evil": "unsafe_id", conflict: "conflicting_rows"}
    assert rejected == {i: expected[rows[0]["dicom_id"]] for i, rows in groups.items()
                        if rows[0]["dicom_id"] in expected}
    assert all(r["dicom_id"] not in expected for r in written.values())
    totals = result.results[0].totals
    assert totals.read == len(groups) == totals.written + totals.rejected
    assert totals.notes["duplicate_row"] == 1


def test_root_may_be_the_project_a_version_folder_or_the_csv(mimic_sample, tmp_path):
    project = mimic_sample.root / "ms-cxr"
    for name, root, csv in (("project", project, "1.1.0/MS_CXR_Local_Alignment_v1.1.0.csv"),
                            ("old", project / "0.1", "MS_CXR_Local_Alignment_v1.0.0.csv"),
                            ("file", mimic_sample.mscxr_csv["1.1.0"], "MS_CXR_Local_Alignment_v1.1.0.csv")):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["build", "ms-cxr", "--root", str(root), "--mimic-root",
                                           str(mimic_sample.root), "--out", str(out), "--image-format", "path",
                                           "--workers", "1"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        options = json.loads((out / "manifest.json").read_text())["configs"]["ms-cxr"]["options"]
        assert options["csv"] == csv and options["ms_cxr_version"] == csv.split("_v")[-1].removesuffix(".csv")
        if name == "project":
            assert options["csvs_found"] == [csv, "0.1/MS_CXR_Local_Alignment_v1.0.0.csv"]
            assert ("MS-CXR: reading 1.1.0/MS_CXR_Local_Alignment_v1.1.0.csv, the newest of 2 found (also "
                    "0.1/MS_CXR_Local_Alignment_v1.0.0.csv)") in " ".join(result.output.split())


def test_two_different_copies_of_the_newest_version_are_refused(mimic_sample, tmp_path):
    project = tmp_path / "ms-cxr"
    shutil.copytree(mimic_sample.root / "ms-cxr", project)
    copy = project / "unzipped" / "MS_CXR_Local_Alignment_v1.1.0.csv"
    copy.parent.mkdir()
    copy.write_text(mimic_sample.mscxr_csv["1.1.0"].read_text().replace(",train", ",test", 1))
    with pytest.raises(CxrdataError, match=r"two different copies of MS_CXR_Local_Alignment_v1\.1\.0\.csv"):
        MsCxrSource(MsCxrOptions(root=project, mimic_root=mimic_sample.root)).check()
    copy.write_text(mimic_sample.mscxr_csv["1.1.0"].read_text())  # the same bytes twice: fine
    assert MsCxrSource(MsCxrOptions(root=project, mimic_root=mimic_sample.root)).csv.parent.name == "1.1.0"


def test_symlinked_image_folders_stay_inside_the_root(mimic_sample, tmp_path):
    """files/ linked from another disk (and the whole root a link): read through the links, nothing rejected."""
    linked = tmp_path / "mimic"
    linked.mkdir()
    (linked / "files").symlink_to(mimic_sample.root / "files")
    (tmp_path / "mimic-link").symlink_to(linked)
    result = _build(mimic_sample.mscxr_csv["1.1.0"], tmp_path / "mimic-link", tmp_path / "out")
    totals = result.results[0].totals
    assert (totals.written, totals.rejected) == (mimic_sample.mscxr_groups["1.1.0"], 0)


@pytest.mark.parametrize("content", [b"", b"dicom_id,category_name,label_text,path,x,y,w,h,image_width,"
                                          b"image_height,split\n"], ids=["zero-bytes", "header-only"])
def test_an_empty_csv_is_one_error_line(mimic_sample, tmp_path, content):
    csv = tmp_path / "ms-cxr" / "MS_CXR_Local_Alignment_v1.1.0.csv"
    csv.parent.mkdir()
    csv.write_bytes(content)
    result = CliRunner().invoke(main, ["build", "ms-cxr", "--root", str(csv.parent), "--mimic-root",
                                       str(mimic_sample.root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ") and str(csv) in line
    assert ("is empty (0 bytes)" if not content else "has a header but no rows") in line


def test_a_renamed_column_is_refused_up_front(mimic_sample, tmp_path):
    csv = _copy_csv(mimic_sample, tmp_path, lambda f: f.rename({"label_text": "phrase"}))
    with pytest.raises(CxrdataError, match="missing column\\(s\\) label_text"):
        build_with("ms-cxr", tmp_path / "out", root=csv.parent, mimic_root=mimic_sample.root)


def test_v1_0_without_the_mimic_split_file_is_refused(mimic_sample, tmp_path):
    images = tmp_path / "mimic"
    shutil.copytree(mimic_sample.root / "files", images / "files")
    with pytest.raises(CxrdataError, match="split"):
        build_with("ms-cxr", tmp_path / "out", root=mimic_sample.mscxr_csv["1.0.0"].parent, mimic_root=images)
