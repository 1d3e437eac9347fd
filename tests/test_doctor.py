"""`cxrdata doctor DATASET`: on each bundled sample (present, counts differing from the official ones as warnings,
the sample's deliberate defects as errors) and on a broken copy (a missing file, a renamed column, an image that
does not decode), each finding with its exact fix."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pydicom
import pytest
from click.testing import CliRunner

from cxrdata.api import bundled_root
from cxrdata.cli import main
from cxrdata.sample.padchest_gr import write_padchest_gr_sample
from cxrdata.sources.doctor import (
    Finding,
    diagnose_imagenome,
    diagnose_mimic,
    diagnose_ms_cxr,
    diagnose_padchest_gr,
    diagnose_vindr,
)

ALL = 1000  # decode every file of a sample


def errors(findings: list[Finding]) -> dict[str, Finding]:
    return {f.item: f for f in findings if f.level == "error"}


def warnings(findings: list[Finding]) -> dict[str, Finding]:
    return {f.item: f for f in findings if f.level == "warning"}


def copy(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / root.name
    shutil.copytree(root, target)
    return target


def rewrite_csv(path: Path, frame: pl.DataFrame) -> None:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            frame.write_csv(fh)
    else:
        frame.write_csv(path)


def rename_column(path: Path, old: str, new: str) -> None:
    rewrite_csv(path, pl.read_csv(path, infer_schema=False).rename({old: new}))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# --- the samples as they are -------------------------------------------------------------------------------


def test_mimic_sample(mimic_sample):
    findings = diagnose_mimic(mimic_sample.root, decode=ALL)
    bad = errors(findings)
    broken = {mimic_sample.truncated_jpeg, mimic_sample.corrupt_jpeg}
    assert {item.rsplit("/", 1)[-1].removesuffix(".jpg") for item in bad if item.endswith(".jpg")} == broken
    assert "reports" in bad and str(mimic_sample.missing_report) in bad["reports"].detail
    assert "the full release has 377,110" in warnings(findings)["mimic-cxr-2.0.0-metadata.csv.gz"].detail


def test_ms_cxr_sample(mimic_sample):
    findings = diagnose_ms_cxr(mimic_sample.mscxr_csv["1.1.0"].parent, mimic_sample.root, decode=ALL)
    assert not errors(findings)
    levels = {f.item: (f.level, f.detail) for f in findings}
    assert levels["MS_CXR_Local_Alignment_v1.1.0.csv"] == ("ok", "MS-CXR v1.1.0 (read from the header)")
    rows = mimic_sample.mscxr_rows["1.1.0"]
    assert levels["MS_CXR_Local_Alignment_v1.1.0.csv rows"] == (
        "warning", f"{rows} box rows; the full release has 1,448")
    images = mimic_sample.mscxr_images["1.1.0"]
    assert levels["referenced images"] == ("ok", f"{images} of {images} referenced images present")
    assert levels["MS_CXR_Local_Alignment_v1.1.0.csv duplicates"] == (
        "warning", "1 row(s) repeated verbatim (the build keeps one box and counts a note duplicate_row)")
    old = diagnose_ms_cxr(mimic_sample.mscxr_csv["1.0.0"].parent, mimic_sample.root, decode=ALL)
    assert not errors(old) and "MS-CXR v1.0.0 (read from the header)" in {f.detail for f in old}
    project = {f.item: f.detail for f in diagnose_ms_cxr(mimic_sample.root / "ms-cxr", mimic_sample.root, decode=0)}
    assert project["MS-CXR version"] == ("MS-CXR: reading 1.1.0/MS_CXR_Local_Alignment_v1.1.0.csv, the newest of 2 "
                                         "found (also 0.1/MS_CXR_Local_Alignment_v1.0.0.csv)")
    assert invoke("doctor", "ms-cxr", "--root", str(mimic_sample.mscxr_csv["1.1.0"].parent)).exit_code == 0


def test_vindr_sample():
    root = bundled_root("vindr")
    findings = diagnose_vindr(root, decode=ALL)
    no_pixels = {f"{p.parent.name}/{p.name}" for p in sorted(root.glob("*/*.dicom"))
                 if "PixelData" not in pydicom.dcmread(p, force=True)}
    assert set(errors(findings)) == no_pixels and len(no_pixels) == 1
    assert "dicom_no_pixels" in errors(findings)[no_pixels.pop()].detail
    warned = warnings(findings)
    train = len(list(root.glob("train/*.dicom")))
    assert warned["train/"].detail == f"{train} DICOM files; the full release has 15,000"
    assert "the full release has 45,000" in warned["annotations/image_labels_train.csv"].detail
    assert "the full release has 3,000" in warned["test/"].detail
    assert invoke("doctor", "vindr", "--root", str(root)).exit_code == 1


def test_padchest_gr_sample():
    root = bundled_root("padchest-gr")
    findings = diagnose_padchest_gr(root, decode=ALL)
    entries = json.loads(next(root.glob("grounded_reports_*.json")).read_text())
    missing = [e["ImageID"] for e in entries
               if ".." not in e["ImageID"] and not (root / "PadChest_GR" / e["ImageID"]).is_file()]
    eight_bit = [p.name for p in sorted((root / "PadChest_GR").glob("*.png"))
                 if cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint8]
    bad = errors(findings)
    name = "grounded_reports_20240819.json"
    assert set(bad) == {"PadChest_GR/ report images", f"PadChest_GR/{eight_bit[0]}", f"{name}: bad_value",
                        f"{name}: findings_missing", f"{name}: unsafe_id", f"{name}: conflicting_entries"}
    assert bad["PadChest_GR/ report images"].detail.endswith(f"first missing: {missing[0]}") and len(missing) == 1
    assert "png_not_16bit" in bad[f"PadChest_GR/{eight_bit[0]}"].detail
    assert bad[f"PadChest_GR/{eight_bit[0]}"].fix.startswith(f"restore the original 16-bit PadChest_GR/{eight_bit[0]}")
    assert bad[f"{name}: bad_value"].detail.startswith("3 record(s) rejected, first: record 21, findings[0].abnormal "
                                                       "is 'false' (a JSON string)")
    assert "'../../evil'" in bad[f"{name}: unsafe_id"].detail
    assert warnings(findings)[f"{name}: duplicate_entry"].detail.startswith("1 record(s) repeated verbatim")
    assert "the full release has 4,555" in warnings(findings)[name].detail
    assert "the full release has 8,787" in warnings(findings)["master_table.csv"].detail


def test_padchest_gr_without_ids_nested(tmp_path):
    """The real copy without ids: the doctor pairs it by order like the build, and finds the prior studies nested
    twice."""
    sample = write_padchest_gr_sample(tmp_path / "pgr", studies=12, ids=False, nested=True)
    findings = diagnose_padchest_gr(sample.root, decode=0)
    pairing = errors(findings)["grounded_reports_20240819.json: pairing"]
    [k] = [int(i.split("-")[1]) for i, r in sample.rejected.items() if r == "pairing_mismatch"]
    assert pairing.detail.startswith(f"no StudyID/ImageID: paired with master_table.csv's studies by order, "
                                     f"{sample.entries - 1} of {sample.entries} pairs verify; "
                                     f"first failing: record {k}")
    prior = warnings(findings)["PadChest_GR_progression_prior_studies/PadChest_GR_progression_prior_studies/"]
    assert prior.detail.startswith(f"{len(sample.prior_image_ids)} PNGs (optional: prior studies)")
    assert "Padchest_GR_files/PadChest_GR/ report images" in errors(findings)  # the missing PNG, found by order
    reports = sample.root / "grounded_reports_20240819.json"
    reports.write_text(json.dumps(json.loads(reports.read_text())[1:]))
    refused = errors(diagnose_padchest_gr(sample.root, decode=0))["grounded_reports_20240819.json: pairing"]
    assert "cannot be paired by order" in refused.detail


def test_imagenome_sample():
    root = bundled_root("imagenome")
    findings = diagnose_imagenome(root, root / "mimic-cxr-jpg", decode=ALL)
    truncated = []
    for path in sorted(root.glob("*/silver_dataset/scene_graph/*.json")):
        try:
            json.loads(path.read_text())
        except ValueError:
            truncated.append(path.name)
    assert set(errors(findings)) == set(truncated) and len(truncated) == 1
    assert "scene_graph_invalid" in errors(findings)[truncated[0]].fix
    warned = warnings(findings)
    assert "the full release has 166,521" in warned["silver_dataset/splits/train.csv"].detail
    gold = "gold_dataset/gold_bbox_coordinate_annotations_1000images.csv"
    assert "the full release has 25,989" in warned[gold].detail
    assert "1 of " in warned["scene graphs of listed images"].detail  # the sample lists one id without a graph


# --- broken copies -------------------------------------------------------------------------------------------


def test_vindr_broken(tmp_path):
    root = copy(bundled_root("vindr"), tmp_path)
    (root / "annotations" / "image_labels_test.csv").unlink()
    rename_column(root / "annotations" / "annotations_train.csv", "class_name", "label")
    victim = sorted((root / "test").glob("*.dicom"))[0]
    truncate(victim)
    bad = errors(diagnose_vindr(root, decode=ALL))
    assert bad["image_labels_test.csv"].fix == (
        "download VinDr-CXR 1.0.0 from PhysioNet (physionet.org/content/vindr-cxr/1.0.0/) into --root")
    assert "missing column(s) class_name" in bad["annotations_train.csv"].detail
    assert bad["annotations_train.csv"].fix == (
        "restore annotations/annotations_train.csv from the PhysioNet download (compare with SHA256SUMS.txt); "
        "its columns must be: image_id,rad_id,class_name,x_min,y_min,x_max,y_max")
    item = f"test/{victim.name}"
    assert bad[item].detail.startswith("does not decode: ")
    assert bad[item].fix.startswith(f"re-download {item} from PhysioNet")
    dcm = root / "train" / "renamed.dcm"
    sorted((root / "train").glob("*.dicom"))[0].rename(dcm)
    assert "rename them" in errors(diagnose_vindr(root, decode=0))["train/"].fix


def test_padchest_gr_broken(tmp_path):
    root = copy(bundled_root("padchest-gr"), tmp_path)
    rename_column(root / "master_table.csv", "split", "Split")
    victim = sorted((root / "PadChest_GR").glob("*.png"))[-1]
    truncate(victim)
    bad = errors(diagnose_padchest_gr(root, decode=ALL))
    assert "missing column(s) split" in bad["master_table.csv"].detail
    assert bad["master_table.csv"].fix.startswith("restore master_table.csv from the BIMCV download; its columns must "
                                                  "be: StudyID,ImageID,label,")
    item = f"PadChest_GR/{victim.name}"
    assert "image_truncated" in bad[item].detail
    assert bad[item].fix.startswith(f"restore the original 16-bit {item} from the BIMCV download")
    (root / "master_table.csv").rename(root / "master_table.csv.zip")  # as some users have it: still zipped
    unzip = errors(diagnose_padchest_gr(root, decode=0))["master_table.csv"].fix
    assert unzip == "unzip master_table.csv.zip in --root"
    next(root.glob("grounded_reports_*.json")).unlink()
    assert errors(diagnose_padchest_gr(root, decode=0))["grounded_reports_*.json"].fix.startswith(
        "request PadChest-GR from BIMCV")


def test_imagenome_broken(tmp_path):
    root = copy(bundled_root("imagenome"), tmp_path)
    data = root / "chest-imagenome-dataset-1.0.0"
    (data / "silver_dataset" / "splits" / "valid.csv").unlink()
    rename_column(data / "gold_dataset" / "gold_bbox_coordinate_annotations_1000images.csv", "bbox_name", "name")
    listed = pl.read_csv(data / "silver_dataset" / "splits" / "test.csv", infer_schema=False)["path"][0]
    victim = root / "mimic-cxr-jpg" / listed.replace(".dcm", ".jpg")
    truncate(victim)
    bad = errors(diagnose_imagenome(root, root / "mimic-cxr-jpg", decode=ALL))
    assert bad["valid.csv"].fix.startswith("download Chest ImaGenome 1.0.0 from PhysioNet")
    gold = bad["gold_bbox_coordinate_annotations_1000images.csv"]
    assert "missing column(s) bbox_name" in gold.detail
    assert gold.fix.startswith("restore gold_dataset/gold_bbox_coordinate_annotations_1000images.csv from "
                               "chest-imagenome-dataset-1.0.0.zip; its columns must be: image_id,x1,y1,x2,y2,")
    item = str(victim.relative_to(root / "mimic-cxr-jpg"))
    assert "image_truncated" in bad[item].detail
    assert bad[item].fix == f"re-download MIMIC-CXR-JPG's {item} from PhysioNet (compare with SHA256SUMS.txt)"


def test_ms_cxr_broken(mimic_sample, tmp_path):
    root = tmp_path / "ms-cxr"
    shutil.copytree(mimic_sample.mscxr_csv["1.1.0"].parent, root)
    csv = root / "MS_CXR_Local_Alignment_v1.1.0.csv"
    rename_column(csv, "label_text", "phrase")
    bad = errors(diagnose_ms_cxr(root))
    assert "missing column(s) label_text" in bad[csv.name].detail
    assert bad[csv.name].fix == ("restore the original file from the download (compare with SHA256SUMS.txt); its "
                                 "header must be: dicom_id,category_name,label_text,path,x,y,w,h,image_width,"
                                 "image_height,split")
    rename_column(csv, "phrase", "label_text")
    mimic = tmp_path / "mimic"
    (mimic / "files").mkdir(parents=True)
    frame = pl.read_csv(csv, infer_schema=False)
    for i, path in enumerate(sorted(set(frame["path"]))):
        target = mimic / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if i > 0:  # the first referenced image is missing, the second does not decode
            shutil.copy(mimic_sample.root / path, target)
    truncate(mimic / sorted(set(frame["path"]))[1])
    bad = errors(diagnose_ms_cxr(root, mimic, decode=ALL))
    assert bad["referenced images"].detail.endswith(f"first missing: {sorted(set(frame['path']))[0]}")
    assert bad["referenced images"].fix.startswith("MS-CXR ships no images: download MIMIC-CXR-JPG")
    assert bad[sorted(set(frame["path"]))[1]].fix.startswith("re-download MIMIC-CXR-JPG's files/")
    frame = pl.read_csv(csv, infer_schema=False)
    taller = frame.head(1).with_columns((pl.col("image_height").cast(pl.Int64) + 7).cast(pl.String))
    pl.concat([frame, taller]).write_csv(csv)
    conflict = errors(diagnose_ms_cxr(root))[f"{csv.name} conflicts"]
    assert conflict.detail.startswith(f"1 image(s) whose rows disagree, first: rows of image {frame['dicom_id'][0]} "
                                      "disagree on image_height")
    csv.unlink()
    missing = errors(diagnose_ms_cxr(root))["MS_CXR_Local_Alignment_v*.csv"]
    assert missing.fix.startswith("download MS-CXR from PhysioNet")


def test_mimic_broken(mimic_sample, tmp_path):
    root = tmp_path / "mimic"
    root.mkdir()
    for path in mimic_sample.root.glob("*.csv*"):
        shutil.copy(path, root / path.name)
    (root / "files").symlink_to(mimic_sample.root / "files")
    rename_column(root / "mimic-cxr-2.0.0-split.csv.gz", "split", "fold")
    (root / "mimic-cxr-2.0.0-chexpert.csv.gz").unlink()
    bad = errors(diagnose_mimic(root, decode=0))
    assert "missing column(s) split" in bad["mimic-cxr-2.0.0-split.csv.gz"].detail
    assert bad["mimic-cxr-2.0.0-chexpert.csv.gz"].fix == (
        "download it from the MIMIC-CXR-JPG project on PhysioNet into --root")


@pytest.mark.parametrize("dataset", ["ms-cxr", "imagenome", "vindr", "padchest-gr"])
def test_missing_root_is_one_error(dataset, tmp_path):
    result = invoke("doctor", dataset, "--root", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "does not exist" in result.output
