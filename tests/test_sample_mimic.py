"""The synthetic MIMIC-CXR-JPG + reports + MS-CXR sample: exact formats, determinism, defects, pictures."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrdata.api import bundled_root
from cxrdata.errors import CxrdataError, Rejected
from cxrdata.imaging.raster import decode_jpeg, jpeg_size
from cxrdata.sample.chest import anatomy_boxes, region_names, render_chest, render_lateral
from cxrdata.sample.mimic import MimicSample, write_mimic_sample
from cxrdata.sample.mscxr import DEID_PREFIX
from cxrdata.sample.reports import LAYOUTS, STYLES, ReportPlan, compose_report, phrases, pick_finding

# Headers exactly as FORMATS.md writes them.
METADATA_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,"
    "StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
    "PatientOrientationCodeSequence_CodeMeaning"
)
SPLIT_HEADER = "dicom_id,study_id,subject_id,split"
LABELS = (
    "Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,Fracture,Lung Lesion,"
    "Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,Pneumothorax,Support Devices"
)
MSCXR_HEADER = "dicom_id,category_name,label_text,path,x,y,w,h,image_width,image_height"
EIGHT = {"Pneumonia", "Pneumothorax", "Pleural Effusion", "Lung Opacity", "Atelectasis", "Cardiomegaly",
         "Consolidation", "Edema"}
DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")
SECTION = re.compile(r"\n ([A-Z ()/,-]+):\s", re.DOTALL)  # the MIT-LCP section parser's header regex
TITLE = " " * 33 + "FINAL REPORT"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> MimicSample:
    return write_mimic_sample(tmp_path_factory.mktemp("mimic") / "mimic-cxr-jpg")


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(path))))


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _metadata(sample: MimicSample) -> list[dict[str, str]]:
    return _rows(sample.root / "mimic-cxr-2.0.0-metadata.csv.gz")


def _image_path(sample: MimicSample, row: dict[str, str]) -> Path:
    s = row["subject_id"]
    return sample.root / f"files/p{s[:2]}/p{s}/s{row['study_id']}/{row['dicom_id']}.jpg"


def test_headers_are_exactly_the_documented_ones(sample: MimicSample) -> None:
    root = sample.root
    first = {name: _text(root / name).split("\n", 1)[0] for name in (
        "mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-chexpert.csv.gz",
        "mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.1.0-test-set-labeled.csv")}
    assert first["mimic-cxr-2.0.0-metadata.csv.gz"] == METADATA_HEADER
    assert first["mimic-cxr-2.0.0-split.csv.gz"] == SPLIT_HEADER
    assert first["mimic-cxr-2.0.0-chexpert.csv.gz"] == f"subject_id,study_id,{LABELS}"
    assert first["mimic-cxr-2.0.0-negbio.csv.gz"] == f"subject_id,study_id,{LABELS}"
    test_header = "study_id," + LABELS.replace("Lung Opacity", "Airspace Opacity")
    assert first["mimic-cxr-2.1.0-test-set-labeled.csv"] == test_header
    assert sample.mscxr_csv["1.0.0"].read_text().split("\n", 1)[0] == MSCXR_HEADER
    assert sample.mscxr_csv["1.1.0"].read_text().split("\n", 1)[0] == MSCXR_HEADER + ",split"
    assert {v: p.relative_to(root).as_posix() for v, p in sample.mscxr_csv.items()} == {
        "1.0.0": "ms-cxr/0.1/MS_CXR_Local_Alignment_v1.0.0.csv",
        "1.1.0": "ms-cxr/1.1.0/MS_CXR_Local_Alignment_v1.1.0.csv",
    }


def test_gzip_headers_carry_no_name_and_no_time(sample: MimicSample) -> None:
    for path in sample.root.glob("*.csv.gz"):
        head = path.read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08"
        assert head[3] & 0x08 == 0, f"{path.name}: FNAME flag set"
        assert head[4:8] == b"\x00\x00\x00\x00", f"{path.name}: mtime not 0"


def test_study_time_drops_the_leading_zero(sample: MimicSample) -> None:
    lines = _text(sample.root / "mimic-cxr-2.0.0-metadata.csv.gz").splitlines()[1:]
    times = [line.split(",")[8] for line in lines]
    early = [t for t in times if float(t) < 100000]
    assert early, "no study before 10:00"
    for text in early:
        assert not text.startswith("0")
        assert len(text.split(".")[0]) <= 5
        assert int(f"{int(float(text)):06}"[:2]) < 10
    assert all(re.fullmatch(r"\d{1,6}\.\d{1,3}", t) for t in times)


def test_metadata_values(sample: MimicSample) -> None:
    rows = _metadata(sample)
    assert len(rows) == sample.images
    assert len({r["dicom_id"] for r in rows}) == sample.images
    assert len({r["subject_id"] for r in rows}) == sample.subjects == 12
    assert len({r["study_id"] for r in rows}) == sample.studies
    for r in rows:
        assert DICOM_ID.match(r["dicom_id"]) and len(r["dicom_id"]) == 44
        assert re.fullmatch(r"1\d{7}", r["subject_id"]) and re.fullmatch(r"5\d{7}", r["study_id"])
        assert 21000101 <= int(r["StudyDate"]) <= 22001231 and len(r["StudyDate"]) == 8
        assert r["PatientOrientationCodeSequence_CodeMeaning"] in {"Erect", "Recumbent", ""}
        assert r["PerformedProcedureStepDescription"] == r["ProcedureCodeSequence_CodeMeaning"]
    views = [r["ViewPosition"] for r in rows]
    assert {"PA", "LATERAL"} <= set(views) <= {"PA", "AP", "LATERAL", "LL", ""}
    assert "LL" in views and "" in views
    assert sum(v in ("PA", "AP") for v in views) == sample.frontal_images
    assert sample.frontal_images + sample.lateral_images == sample.images
    meaning = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral", "LL": "left lateral",
               "": ""}
    assert all(r["ViewCodeSequence_CodeMeaning"] == meaning[r["ViewPosition"]] for r in rows)
    lines = (sample.root / "IMAGE_FILENAMES").read_text().splitlines()
    assert lines == [str(_image_path(sample, r).relative_to(sample.root)) for r in rows]


def test_rows_and_columns_are_the_real_jpeg_size(sample: MimicSample) -> None:
    sizes = []
    for r in _metadata(sample):
        data = _image_path(sample, r).read_bytes()
        if r["dicom_id"] == sample.corrupt_jpeg:
            continue
        width, height = jpeg_size(data)  # the truncated one still has its header
        assert (width, height) == (int(r["Columns"]), int(r["Rows"])) == sample.image_sizes[r["dicom_id"]]
        if r["dicom_id"] != sample.truncated_jpeg:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert pixels.dtype == np.uint8 and pixels.shape == (height, width)
        sizes.append((width, height))
    full = sorted(sample.image_sizes[d] for d in sample.full_size)
    assert full == [(2539, 2705), (2544, 3056), (3056, 2544)]
    small = [s for d, s in sample.image_sizes.items() if d not in sample.full_size]
    assert all(320 <= max(s) <= 640 for s in small)
    assert len(sizes) == sample.images - 1


def test_same_seed_same_bytes_through_the_cache(sample: MimicSample, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXRDATA_CACHE", str(tmp_path / "cache"))
    root = bundled_root("mimic")
    assert root.parent == tmp_path / "cache" / "samples"
    assert root.name.startswith("mimic-v") and root.name.endswith("-seed0")
    assert _tree(root) == _tree(sample.root)
    (root / "marker").write_text("kept")
    assert bundled_root("mimic") == root and (root / "marker").exists()  # reused, not rebuilt
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no scratch folder left behind
    with pytest.raises(CxrdataError, match="no bundled sample"):
        bundled_root("no-such-dataset")


def test_seed_decides_every_byte(tmp_path: Path) -> None:
    small = {"subjects": 3, "full_size_images": 1, "defects": False}
    first, again, other = (write_mimic_sample(tmp_path / name, seed=seed, **small)
                           for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert _tree(first.root) == _tree(again.root)
    mine, theirs = _tree(first.root), _tree(other.root)
    assert set(mine) != set(theirs)
    assert mine["mimic-cxr-2.0.0-metadata.csv.gz"] != theirs["mimic-cxr-2.0.0-metadata.csv.gz"]


def test_sha256sums_are_real(sample: MimicSample) -> None:
    lines = (sample.root / "SHA256SUMS.txt").read_text().splitlines()
    listed = dict(reversed(line.split(" ", 1)) for line in lines)
    assert len(listed) == sample.images + 8  # images + 5 CSVs + IMAGE_FILENAMES + README + LICENSE.txt
    assert {"README", "LICENSE.txt", "IMAGE_FILENAMES", "mimic-cxr-2.0.0-split.csv.gz"} <= set(listed)
    for rel, digest in listed.items():
        assert hashlib.sha256((sample.root / rel).read_bytes()).hexdigest() == digest


def test_split_is_per_patient_and_misses_one_image(sample: MimicSample) -> None:
    split = _rows(sample.root / "mimic-cxr-2.0.0-split.csv.gz")
    by_subject = defaultdict(set)
    for r in split:
        by_subject[r["subject_id"]].add(r["split"])
    assert all(len(v) == 1 for v in by_subject.values())
    assert {s for v in by_subject.values() for s in v} == {"train", "validate", "test"}
    in_split = {r["dicom_id"] for r in split}
    in_metadata = {r["dicom_id"] for r in _metadata(sample)}
    assert in_metadata - in_split == {sample.missing_split}
    assert in_split < in_metadata


def test_labels(sample: MimicSample) -> None:
    chexpert = _rows(sample.root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    assert len(chexpert) == len({(r["subject_id"], r["study_id"]) for r in chexpert}) == sample.studies
    assert _rows(sample.root / "mimic-cxr-2.0.0-negbio.csv.gz") == chexpert
    values = {v for r in chexpert for k, v in r.items() if k not in ("subject_id", "study_id")}
    assert values == {"", "1.0", "0.0", "-1.0"}
    single = sum(sum(r[p] == "1.0" for p in EIGHT) == 1 for r in chexpert)
    assert single == sample.single_pathology_studies >= sample.studies // 3
    assert {p for r in chexpert for p in EIGHT if r[p] == "1.0"} == EIGHT
    for r in chexpert:
        if r["No Finding"] == "1.0":
            assert all(r[k] not in ("1.0", "-1.0") for k in r if k not in ("No Finding", "Support Devices"))
    split = _rows(sample.root / "mimic-cxr-2.0.0-split.csv.gz")
    test_studies = {r["study_id"] for r in split if r["split"] == "test"}
    test_set = _rows(sample.root / "mimic-cxr-2.1.0-test-set-labeled.csv")
    assert {r["study_id"] for r in test_set} == test_studies
    lung = {r["study_id"]: r["Lung Opacity"] for r in chexpert}
    assert all(r["Airspace Opacity"] == lung[r["study_id"]] for r in test_set)


def _reports(sample: MimicSample) -> dict[str, str]:
    return {p.stem[1:]: p.read_text() for p in (sample.root / "files").rglob("s*.txt")}


def test_report_layout(sample: MimicSample) -> None:
    reports = _reports(sample)
    assert len(reports) == sample.reports == sample.studies - 1
    for study, text in reports.items():
        lines = text.split("\n")
        assert lines[-1] == "" and lines[-2] != " ", study  # ends with one newline, no trailing blank line
        titles = [k for k, line in enumerate(lines) if line.strip() in ("FINAL REPORT", "FINAL ADDENDUM")]
        preliminary = 0  # WET READ / PFI lines above the final report: their text is indented by two spaces
        if lines[0].startswith(" WET READ: "):
            preliminary = titles[0] - 1
            assert lines[preliminary] == " " + "_" * 78 and lines[titles[0]] == TITLE
            headings = (" WET READ", " PROVISIONAL")
            assert all(line[:2] == "  " or line.startswith(headings) for line in lines[:preliminary])
        elif lines[0].strip() == "FINAL ADDENDUM":
            assert lines[0] == " " * 33 + "FINAL ADDENDUM"
            assert lines[titles[1] - 1] == " " + "_" * 78 and lines[titles[1]] == TITLE
        else:
            assert lines[0] == TITLE and titles == [0]
        for k, line in enumerate(lines[:-1]):
            if k in titles or k < preliminary:
                continue
            assert len(line) <= 79, (study, line)
            assert line == " " or (line[0] == " " and line[1] != " "), (study, line)
        assert "___" in text
    wrapped_gap = [line for text in reports.values() for line in text.split("\n") if line.endswith(". ")]
    assert wrapped_gap, "no line broken at a two-space sentence gap (real reports keep one trailing space)"


def test_sample_writes_each_real_report_layout(sample: MimicSample) -> None:
    """FORMATS.md 1.5: each real layout is in the default sample, once, as the real files have it."""
    assert set(sample.layouts) == {"crlf", "custom_span", *LAYOUTS}
    data = {p.stem[1:]: p.read_bytes() for p in (sample.root / "files").rglob("s*.txt")}
    text = {study: raw.decode().replace("\r\n", "\n") for study, raw in data.items()}

    def of(layout: str) -> str:
        return text[str(sample.layouts[layout])]

    assert [s for s, raw in data.items() if b"\r" in raw] == [str(sample.layouts["crlf"])]
    crlf = data[str(sample.layouts["crlf"])]
    assert crlf.count(b"\n") == crlf.count(b"\r\n") and not SECTION.findall(of("crlf"))
    assert all(raw.endswith(b"\n") and not raw.endswith(b" \n \n") for raw in data.values())
    assert (sample.root / "files/p17/p17069955/s51410602.txt").is_file()  # a custom_indices study: [47, 320]
    assert of("custom_span")[47:320].startswith("No acute") and of("custom_span")[319] == "."
    assert (sample.root / "files/p11/p11984647/s59067458.txt").is_file()  # custom_section_names: recommendations
    assert "\n RECOMMENDATION(S):  " in of("custom_section")
    title_line = r"\n HISTORY:  .*\n \n CHEST, (SINGLE AP PORTABLE|PA AND LATERAL) VIEWS?\.\n \n COMPARISON:  "
    assert re.search(title_line, of("title_line"), re.DOTALL)
    study_header = r"\n (PA AND LATERAL|PORTABLE AP|FRONTAL AND LATERAL) VIEWS? OF THE CHEST:  \S"
    assert re.search(study_header, of("inline_header"))
    assert "\n NDICATION:  " in of("ndication") and "IMPRESSION" not in of("ndication")
    assert "\n CONCUSION: \n" in of("concusion") and "\n COINCLUSION: \n" in of("coinclusion")
    assert "\n CLINICAL INFORMATION & QUESTIONS TO BE ANSWERED:  " in of("clinical_questions")
    assert of("wet_read").startswith(" WET READ: ___ ___ ___ 9:14 AM\n  ")
    assert "\n WET READ VERSION #1 " in of("wet_read")
    assert "\n PROVISIONAL FINDINGS IMPRESSION (PFI): ___" in of("pfi")


def test_report_styles_cover_the_parser_cases(sample: MimicSample) -> None:
    headers = {study: [h for h in SECTION.findall(text)] for study, text in _reports(sample).items()}
    found = {h for hs in headers.values() for h in hs}
    assert {"EXAMINATION", "INDICATION", "TECHNIQUE", "COMPARISON", "FINDINGS", "IMPRESSION"} <= found
    assert found & {"IMPRESSON", "IMPRRESSION", "CONCLUSION"} and found & {"FINDING", "FINDINS"}
    assert found & {"FINDINGS AND IMPRESSION", "FINDINGS/IMPRESSION"} and "ADDENDUM" in found
    assert any(not hs for hs in headers.values()), "no report without headers"
    findings = {"FINDINGS", "FINDING", "FINDINS"}
    assert any(hs and not findings & set(hs) and "IMPRESSION" in hs for hs in headers.values())
    assert any(" \n " + "_" * 78 + "\n" in text for text in _reports(sample).values())


def test_reports_agree_with_labels_and_phrases(sample: MimicSample) -> None:
    reports = _reports(sample)
    for r in _rows(sample.root / "mimic-cxr-2.0.0-chexpert.csv.gz"):
        text = " ".join(reports.get(r["study_id"], "").lower().split())
        if not text:
            assert int(r["study_id"]) == sample.missing_report
            continue
        if any(r[p] == "-1.0" for p in EIGHT):
            assert re.search(r"cannot be excluded|possible|may ", text)
        if any(r[p] == "0.0" for p in EIGHT):
            assert re.search(r"\bno\b|negative|without|free of|not |normal|resol|clear|improved", text)
        if r["No Finding"] == "1.0":
            assert "acute" in text or "normal" in text
    for row in _rows(sample.mscxr_csv["1.1.0"]):  # the report's phrase, in any case, maybe after a DEID prefix
        study = row["path"].split("/")[3][1:]
        phrase = row["label_text"].removeprefix(DEID_PREFIX)
        assert phrase.lower() in reports[study].lower(), row["label_text"]


def test_mscxr_rows(sample: MimicSample) -> None:
    metadata = {r["dicom_id"]: r for r in _metadata(sample)}
    for version in ("1.0.0", "1.1.0"):
        rows = _rows(sample.mscxr_csv[version])
        assert len(rows) == sample.mscxr_rows[version]
        groups = defaultdict(list)
        for row in rows:
            groups[(row["dicom_id"], row["category_name"], row["label_text"])].append(row)
            meta = metadata[row["dicom_id"]]
            assert meta["ViewPosition"] in ("PA", "AP")
            assert row["dicom_id"] not in (sample.truncated_jpeg, sample.corrupt_jpeg)
            assert row["path"] == str(_image_path(sample, meta).relative_to(sample.root))
            assert len(row["path"]) == 78
            x, y, w, h, iw, ih = (int(row[k]) for k in ("x", "y", "w", "h", "image_width", "image_height"))
            assert (iw, ih) == (int(meta["Columns"]), int(meta["Rows"]))
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= iw and y + h <= ih
            assert row["category_name"] in EIGHT and len(row["label_text"]) >= 12
            if version == "1.1.0":
                assert row["split"] in ("train", "val", "test")
        assert len(groups) == sample.mscxr_groups[version]
        assert any(len(g) > 1 for g in groups.values()), "no multi-box phrase"
        coco = json.loads(sample.mscxr_json[version].read_text())
        assert [int(v) for a in coco["annotations"] for v in a["bbox"]] == [
            int(row[k]) for row in rows for k in ("x", "y", "w", "h")]
        assert len(coco["images"]) == sample.mscxr_images[version]
        assert [c["name"] for c in coco["categories"]] == sorted(EIGHT)
    v10 = {(r["dicom_id"], r["label_text"]) for r in _rows(sample.mscxr_csv["1.0.0"])}
    v11 = {(r["dicom_id"], r["label_text"]) for r in _rows(sample.mscxr_csv["1.1.0"])}
    assert v10 < v11
    splits = defaultdict(set)
    for r in _rows(sample.mscxr_csv["1.1.0"]):
        splits[r["path"].split("/")[2]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values())  # patient-level


def test_defects(sample: MimicSample, tmp_path: Path) -> None:
    by_id = {r["dicom_id"]: r for r in _metadata(sample)}
    with pytest.raises(Rejected) as truncated:
        decode_jpeg(_image_path(sample, by_id[sample.truncated_jpeg]).read_bytes())
    assert truncated.value.reason == "image_truncated"
    with pytest.raises(Rejected) as corrupt:
        decode_jpeg(_image_path(sample, by_id[sample.corrupt_jpeg]).read_bytes())
    assert corrupt.value.reason == "image_corrupt"
    for dicom_id, row in by_id.items():
        if dicom_id not in sample.defective_images:
            decode_jpeg(_image_path(sample, row).read_bytes(), max_side=64)
    studies = {r["study_id"] for r in by_id.values()}
    assert str(sample.missing_report) in studies and str(sample.missing_report) not in _reports(sample)
    assert len({sample.truncated_jpeg, sample.corrupt_jpeg, sample.missing_split}) == 3
    clean = write_mimic_sample(tmp_path / "clean", subjects=4, seed=3, full_size_images=0, defects=False)
    assert clean.truncated_jpeg is clean.corrupt_jpeg is clean.missing_report is clean.missing_split is None
    assert clean.reports == clean.studies and not clean.full_size
    assert len(_rows(clean.root / "mimic-cxr-2.0.0-split.csv.gz")) == clean.images


def test_rendered_chest_looks_like_a_chest() -> None:
    for width, height in ((500, 600), (600, 500), (330, 352)):
        img = render_chest(width, height, np.random.default_rng(1)).astype(float)
        boxes = anatomy_boxes(width, height)

        def mean(name: str, img: np.ndarray = img, boxes: dict = boxes) -> float:
            x0, y0, x1, y1 = boxes[name]
            h, w = img.shape
            return float(img[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].mean())

        lungs = (mean("right mid lung zone") + mean("left mid lung zone")) / 2
        assert lungs + 40 < mean("upper mediastinum")
        assert lungs + 40 < mean("abdomen")
        assert lungs + 20 < mean("cardiac silhouette")
        assert img[:5, :5].mean() < 30 and img[:5, -5:].mean() < 30  # air outside the body
        assert img.std() > 5
    lateral = render_lateral(500, 600, np.random.default_rng(1)).astype(float)
    frontal = render_chest(500, 600, np.random.default_rng(1)).astype(float)
    assert np.abs(lateral - frontal).mean() > 15


def test_anatomy_boxes_name_every_imagenome_region() -> None:
    boxes = anatomy_boxes(2544, 3056)
    assert list(boxes) == list(region_names()) and len(boxes) == 36
    assert list(boxes)[:3] == ["right lung", "right upper lung zone", "right mid lung zone"]
    assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in boxes.values())
    assert boxes["right lung"][2] < boxes["left lung"][0]  # patient's right is on the image left
    normal = boxes["cardiac silhouette"]
    big = anatomy_boxes(2544, 3056, cardiomegaly=True)["cardiac silhouette"]
    assert big[2] - big[0] > 1.2 * (normal[2] - normal[0])


@pytest.mark.parametrize("pathology,region", [
    ("Lung Opacity", "right mid lung zone"), ("Pneumonia", "left lower lung zone"),
    ("Consolidation", "right lower lung zone"), ("Atelectasis", "left lower lung zone"),
    ("Pleural Effusion", "right lower lung zone"), ("Pneumothorax", "left apical zone"),
    ("Edema", "right lung"), ("Cardiomegaly", "cardiac silhouette"),
])
def test_findings_are_drawn_inside_their_box_only(pathology: str, region: str) -> None:
    width, height = 500, 600
    box = anatomy_boxes(width, height, cardiomegaly=pathology == "Cardiomegaly")[region]
    plain = render_chest(width, height, np.random.default_rng(5)).astype(int)
    sick = render_chest(width, height, np.random.default_rng(5), [(pathology, box)]).astype(int)
    margin = 0  # every finding stops exactly at its box, except the heart's edge, blurred by a few pixels
    if pathology == "Cardiomegaly":
        margin = round(2 + 0.04 * max(box[2] - box[0], box[3] - box[1]) * width)
    x0, y0 = int(box[0] * width) - margin, int(box[1] * height) - margin
    x1, y1 = int(np.ceil(box[2] * width)) + margin, int(np.ceil(box[3] * height)) + margin
    inside = np.zeros(plain.shape, bool)
    inside[max(y0, 0):y1, max(x0, 0):x1] = True
    diff = sick - plain
    assert not diff[~inside].any()
    assert np.abs(diff[inside]).mean() > 5
    assert (diff[inside].mean() < 0) == (pathology == "Pneumothorax")  # only a pneumothorax darkens


def test_report_text_rules_hold_for_many_plans() -> None:
    rng = np.random.default_rng(11)
    known = {h for names in phrases()["headers"].values() for h in names}
    layouts = phrases()["layouts"]
    layout_headers = {"HISTORY", "NDICATION", "CONCUSION", "COINCLUSION", *layouts["study_headers"].values(),
                      *layouts["custom_section_headers"].values()}
    styles = (*STYLES, *(s for s in LAYOUTS if s not in ("wet_read", "pfi")))  # those start with a WET READ
    for k in range(60):
        names = [str(p) for p in rng.choice(sorted(EIGHT), int(rng.integers(0, 3)), replace=False)]
        plan = ReportPlan("CHEST (PORTABLE AP)", "Single frontal view of the chest", styles[k % len(styles)],
                          positives=[pick_finding(rng, p) for p in names[:1]],
                          uncertain=[pick_finding(rng, p) for p in names[1:]], devices=k % 2,
                          conclusion_header="RECOMMENDATION(S)")
        report = compose_report(rng, plan)
        lines = report.text.split("\n")[:-1]
        assert all(len(line) <= 79 for line in lines)
        assert set(SECTION.findall(report.text)) <= known | layout_headers  # no sentence looks like a header
        titles = ("FINAL REPORT", "FINAL ADDENDUM")
        assert all(line == " " or line.strip() in titles or line[1] != " " for line in lines)
        assert {p: v for p, v in report.labels.items() if v != 0.0 and p in EIGHT} == {
            **{p: -1.0 for p in names[1:]}, **{p: 1.0 for p in names[:1]}}
        assert (report.labels.get("Support Devices") == 1.0) == bool(k % 2)
        assert (report.labels.get("No Finding") == 1.0) == (not names)
