"""A synthetic MIMIC-CXR-JPG 2.1.0 download with its reports and MS-CXR, byte-identical for a seed.

Layout, names and value quirks follow FORMATS.md sections 1-2: ``files/pXX/pXXXXXXXX/sXXXXXXXX/``
holding ``<dicom_id>.jpg``, reports beside the study folders, the gzip CSVs (StudyTime without its
leading zero), the 2.1.0 test-set labels, IMAGE_FILENAMES, checksums, and MS-CXR 0.1 / 1.1.0 under
``ms-cxr/``. Each study's labels come from the sentences of its report; each MS-CXR box frames the
finding drawn in the image. The real report layouts of FORMATS.md 1.5 (CRLF, WET READ, typo headers,
the official per-study rules, ...) are each placed on one study (:mod:`cxrdata.sample.mimic_layouts`).
The default sample carries four deliberate defects (see
:class:`MimicSample`) so that a build shows its rejects; ``defects=False`` gives a clean tree.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml

from cxrdata.boxes import Box, from_xyxy_pixels
from cxrdata.imaging.raster import encode
from cxrdata.recipe import option
from cxrdata.sample import tables
from cxrdata.sample.chest import ChestLayout, frame_regions, render_chest, render_lateral
from cxrdata.sample.mimic_layouts import place_layouts
from cxrdata.sample.mimic_table_defects import add_table_defects
from cxrdata.sample.mscxr import MscxrBox, write_mscxr
from cxrdata.sample.reports import STYLES, Finding, ReportPlan, compose_report, pick_finding
from cxrdata.vocabulary import pathologies

Rng = np.random.Generator
T = TypeVar("T")
Kind = tuple[list[str], list[str]]  # (positive pathologies, uncertain pathologies) of a study
FRONTAL = ("PA", "AP")
METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv.gz"
NEGBIO = "mimic-cxr-2.0.0-negbio.csv.gz"
TEST_LABELS = "mimic-cxr-2.1.0-test-set-labeled.csv"


@cache
def config() -> dict:
    """Values of the sample (``mimic.yaml``): columns, exams, sizes, shares."""
    return yaml.safe_load(resources.files("cxrdata.sample").joinpath("mimic.yaml").read_text())



@dataclass(frozen=True)
class SampleOptions:
    """``cxrdata sample-data mimic``: how large a sample."""

    subjects: int = option(12, "Patients to write.", bounds=(1, None))


@dataclass(frozen=True)
class MimicSample:
    """What :func:`write_mimic_sample` wrote; every count is exact."""

    root: Path
    seed: int
    subjects: int
    studies: int
    images: int  # metadata rows = JPEG files (defective ones included)
    frontal_images: int  # ViewPosition PA or AP
    lateral_images: int  # ViewPosition LATERAL, LL or empty
    reports: int  # report .txt files written
    layouts: dict[str, int]  # real report layout (sample.mimic_layouts) -> the study_id that has it
    table_defects: dict[str, str]  # table defect (sample.mimic_table_defects) -> its dicom_id or study_id
    single_pathology_studies: int  # exactly one of the 8 pathologies labelled 1.0 in the CheXpert file
    image_sizes: dict[str, tuple[int, int]]  # dicom_id -> (width, height) = (Columns, Rows)
    full_size: tuple[str, ...]  # dicom_ids written at full resolution
    truncated_jpeg: str | None  # dicom_id of a JPEG cut in half
    corrupt_jpeg: str | None  # dicom_id of a .jpg that is random bytes
    missing_report: int | None  # study_id whose report .txt is absent
    missing_split: str | None  # dicom_id in the metadata but not in the split CSV
    mscxr_csv: dict[str, Path]  # MS-CXR file version ("1.0.0", "1.1.0") -> CSV
    mscxr_json: dict[str, Path]
    mscxr_rows: dict[str, int]  # boxes
    mscxr_groups: dict[str, int]  # distinct (dicom_id, category_name, label_text)
    mscxr_images: dict[str, int]
    mscxr_duplicate_rows: dict[str, int]  # rows repeating an earlier row verbatim (a defect)

    @property
    def defective_images(self) -> tuple[str, ...]:
        """dicom_ids whose JPEG does not decode."""
        return tuple(d for d in (self.truncated_jpeg, self.corrupt_jpeg) if d)

    def summary(self) -> str:
        return f"wrote {self.images} images of {self.studies} studies of {self.subjects} subjects to {self.root}"


@dataclass
class _Image:
    dicom_id: str
    view: str
    width: int = 0
    height: int = 0
    findings: list[tuple[str, Box]] = field(default_factory=list)  # what is drawn, canonical boxes
    defect: str = ""  # "", "truncated" or "corrupt"


@dataclass
class _Study:
    subject_id: int
    date: int
    time: float
    exam: dict
    orientation: str
    style: str
    images: list[_Image]
    positives: list[Finding]
    frame_boxes: list[list[Box]]  # per positive finding, its boxes in chest-frame coordinates
    labels: dict[str, float]
    report: str
    plan: ReportPlan
    report_state: dict  # the random stream's state when the report was composed (a layout reuses its sentences)
    study_id: int = 0
    split: str = ""
    mscxr_split: str = ""
    line_end: str = "\n"  # "\r\n": the report as a Windows unzip writes it

    @property
    def folder(self) -> str:
        s = str(self.subject_id)
        return f"files/p{s[:2]}/p{s}/s{self.study_id}"


@dataclass
class _Defects:
    truncated: str | None = None
    corrupt: str | None = None
    missing_split: str | None = None
    missing_report: int | None = None


def _pick(rng: Rng, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _ids(rng: Rng, n: int, low: int, high: int) -> list[int]:
    """``n`` distinct integers in [low, high), in draw order."""
    out: dict[int, None] = {}
    while len(out) < n:
        out.setdefault(int(rng.integers(low, high)), None)
    return list(out)


def _dicom_id(rng: Rng) -> str:
    """Five dash-separated groups of 8 lowercase hex digits (44 characters)."""
    digits = rng.bytes(20).hex()
    return "-".join(digits[k : k + 8] for k in range(0, 40, 8))


def _shares(rng: Rng, n: int, shares: dict[str, float], rest: str) -> list[str]:
    """Assign ``n`` items to named groups by share (at least one each when there is room)."""
    names: list[str] = []
    for name, share in shares.items():
        count = round(share * n)
        names += [name] * (max(1, count) if n > len(shares) else count)
    names = (names + [rest] * n)[:n]
    return [names[k] for k in rng.permutation(n)]


def _time(rng: Rng, before_ten: bool = False) -> float:
    """StudyTime as the float MIMIC stores: HHMMSS.fff, so 08:05:56.875 is 80556.875."""
    hour = int(rng.integers(6, 10)) if before_ten else int(rng.integers(0, 24))
    hhmmss = hour * 10000 + int(rng.integers(0, 60)) * 100 + int(rng.integers(0, 60))
    return float(f"{hhmmss}.{int(rng.integers(0, 1000)):03d}")


def _kinds(rng: Rng, n: int) -> list[Kind]:
    """What each study shows; single-pathology studies cycle through all 8 pathologies."""
    kinds = config()["study_kinds"]
    names, weights = list(kinds), np.array(list(kinds.values()), float)
    cycle = [str(p) for p in rng.permutation(pathologies())]
    out: list[Kind] = []
    singles = 0
    for _ in range(n):
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        picked = [str(p) for p in rng.choice(pathologies(), 2, replace=False)]
        if kind == "single":
            out.append(([cycle[singles % len(cycle)]], []))
            singles += 1
        elif kind == "normal":
            out.append(([], []))
        elif kind == "multiple":
            out.append((picked, []))
        else:
            out.append((picked[:1] if rng.random() < 0.5 else [], picked[1:]))
    return out


def _styles(rng: Rng, n: int) -> list[str]:
    """Report styles: every style early on (standard twice), then mostly standard."""
    first = [STYLES[k] for k in rng.permutation(len(STYLES))]
    first.insert(int(rng.integers(len(first))), "standard")
    later = ["standard" if rng.random() < 0.6 else str(_pick(rng, STYLES)) for _ in range(n)]
    return (first + later)[:n]


def _frame_box(rng: Rng, regions: tuple[str, ...], cardiomegaly: bool, jitter: float) -> Box:
    """Union of chest regions, each side pulled in by up to ``jitter`` of the box size."""
    boxes = [frame_regions(cardiomegaly)[name] for name in regions]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    dx0, dy0, dx1, dy1 = rng.uniform(0.0, jitter, 4)
    w, h = x1 - x0, y1 - y0
    return (x0 + dx0 * w, y0 + dy0 * h, x1 - dx1 * w, y1 - dy1 * h)


def _study(rng: Rng, subject: int, date: dt.date, kind: Kind, style: str, earlier: list[Finding]) -> _Study:
    """One study: exam, views, findings, its report and the labels the report implies."""
    exams = config()["exams"]
    weights = np.array([e["weight"] for e in exams], float)
    exam = exams[int(rng.choice(len(exams), p=weights / weights.sum()))]
    positives = [pick_finding(rng, p) for p in kind[0]]
    uncertain = [pick_finding(rng, p) for p in kind[1]]
    resolved = [f for f in earlier if f.pathology not in {*kind[0], *kind[1]} and rng.random() < 0.6]
    devices = int(rng.integers(1, 3)) if rng.random() < exam.get("devices", 0.0) else 0
    plan = ReportPlan(exam["name"], exam["technique"], style, positives, uncertain, resolved, devices)
    report_state = rng.bit_generator.state
    report = compose_report(rng, plan)
    enlarged = "Cardiomegaly" in kind[0]
    jitter = {"Cardiomegaly": 0.0}  # the heart box is the drawn enlarged heart's box
    frame_boxes = [
        [_frame_box(rng, regions, enlarged, jitter.get(f.pathology, 0.08)) for regions in f.regions]
        for f in positives
    ]
    views = _pick(rng, exam["views"])
    return _Study(
        subject_id=subject, date=int(date.strftime("%Y%m%d")), time=_time(rng), exam=exam,
        orientation=str(_pick(rng, exam["orientation"])), style=style,
        images=[_Image(_dicom_id(rng), str(v)) for v in views],
        positives=positives, frame_boxes=frame_boxes, labels=report.labels, report=report.text, plan=plan,
        report_state=report_state,
    )


def _plan(rng: Rng, subjects: int) -> list[_Study]:
    """Subjects, studies, images, labels and reports, before any size or defect is chosen."""
    cfg = config()
    subject_ids = sorted(_ids(rng, subjects, 10_000_000, 20_000_000))
    counts = [int(rng.integers(1, 4)) for _ in subject_ids]
    kinds, styles = _kinds(rng, sum(counts)), _styles(rng, sum(counts))
    study_ids = iter(_ids(rng, sum(counts), 50_000_000, 60_000_000))
    splits = _shares(rng, subjects, cfg["split_shares"], "train")
    mscxr_shares = {k: v for k, v in cfg["mscxr_splits"].items() if k != "train"}
    mscxr_splits = _shares(rng, subjects, mscxr_shares, "train")
    studies: list[_Study] = []
    for subject_id, count, split, mscxr_split in zip(subject_ids, counts, splits, mscxr_splits, strict=True):
        date = dt.date(int(rng.integers(2110, 2195)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        earlier: list[Finding] = []
        for _ in range(count):
            k = len(studies)
            study = _study(rng, subject_id, date, kinds[k], styles[k], earlier)
            study.study_id, study.split, study.mscxr_split = next(study_ids), split, mscxr_split
            studies.append(study)
            earlier = study.positives
            date += dt.timedelta(days=int(rng.integers(1, 500)))
    if not any(s.time < 100000 for s in studies):  # show the missing leading zero at least once
        studies[0].time = _time(rng, before_ten=True)
    laterals = [im for s in studies for im in s.images if im.view == "LATERAL"]
    if laterals:
        laterals[0].view = "LL"
    if len(laterals) > 1:
        laterals[-1].view = ""  # a metadata row with no ViewPosition
    return studies


def _choose_images(rng: Rng, studies: list[_Study], full_size_images: int) -> tuple[set[str], list[_Image]]:
    """(MS-CXR dicom_ids: the first frontal image of each study with findings, full-size images)."""
    images = [im for s in studies for im in s.images]
    if full_size_images > len(images):
        raise ValueError(f"full_size_images={full_size_images} but the sample has only {len(images)} images")
    mscxr = [next(im for im in s.images if im.view in FRONTAL) for s in studies
             if s.positives and any(im.view in FRONTAL for im in s.images)]
    ids = {im.dicom_id for im in mscxr}
    others = [im for im in images if im.dicom_id not in ids]
    order = [mscxr[k] for k in rng.permutation(len(mscxr))]
    order += [others[k] for k in rng.permutation(len(others))]
    return ids, order[:full_size_images]


def _sizes(rng: Rng, studies: list[_Study], full: list[_Image]) -> None:
    """Small realistic-aspect sizes per study; real full sizes for the images in ``full``."""
    cfg = config()
    low, high = cfg["small_side"]
    for study in studies:
        width, height = _pick(rng, cfg["image_sizes"])
        scale = rng.uniform(low, high) / max(width, height)
        for im in study.images:
            im.width, im.height = round(width * scale), round(height * scale)
    for k, im in enumerate(full):
        im.width, im.height = cfg["full_sizes"][k % len(cfg["full_sizes"])]


def _pixel_box(layout: ChestLayout, frame_box: Box) -> tuple[int, int, int, int]:
    """Chest-frame box -> integer xyxy pixels, clipped to the image."""
    x0, y0, x1, y1 = layout.to_image(frame_box)
    w, h = layout.width, layout.height
    return (max(0, math.floor(x0 * w)), max(0, math.floor(y0 * h)),
            min(w, math.ceil(x1 * w)), min(h, math.ceil(y1 * h)))


def _place_findings(studies: list[_Study], mscxr: set[str]) -> list[MscxrBox]:
    """Put every positive finding on every frontal image of its study; MS-CXR rows for ``mscxr``."""
    rows = []
    for study in studies:
        for im in (im for im in study.images if im.view in FRONTAL):
            layout = ChestLayout.fit(im.width, im.height)
            for finding, frame_boxes in zip(study.positives, study.frame_boxes, strict=True):
                for frame_box in frame_boxes:
                    x0, y0, x1, y1 = _pixel_box(layout, frame_box)
                    drawn = from_xyxy_pixels(x0, y0, x1, y1, im.width, im.height)
                    im.findings.append((finding.pathology, drawn))
                    if im.dicom_id in mscxr:
                        path, xywh = f"{study.folder}/{im.dicom_id}.jpg", (x0, y0, x1 - x0, y1 - y0)
                        rows.append(MscxrBox(im.dicom_id, finding.pathology, finding.phrase, path, xywh,
                                             im.width, im.height, study.mscxr_split))
    return rows


def _choose_defects(rng: Rng, studies: list[_Study], avoid: set[str]) -> _Defects:
    """Four defects, each in a different study when the sample allows, never on an ``avoid`` image."""
    pool = [(s, im) for s in studies for im in s.images
            if im.dicom_id not in avoid and im.view in (*FRONTAL, "LATERAL")]
    used: set[int] = set()

    def take(candidates: list[tuple[_Study, _Image]]) -> tuple[_Study, _Image]:
        if not candidates:
            raise ValueError("the sample is too small for its defects; use more subjects or defects=False")
        fresh = [c for c in candidates if c[0].study_id not in used] or candidates
        study, image = fresh[int(rng.integers(len(fresh)))]
        candidates.remove((study, image))
        used.add(study.study_id)
        return study, image

    defects = _Defects()
    for kind in ("truncated", "corrupt"):
        image = take(pool)[1]
        image.defect = kind
        setattr(defects, kind, image.dicom_id)
    defects.missing_split = take(pool)[1].dicom_id
    quiet = [(s, s.images[0]) for s in studies
             if s.style == "standard" and not {im.dicom_id for im in s.images} & avoid]
    plain = [(s, s.images[0]) for s in studies if s.style in STYLES and s.line_end == "\n"]  # no layout lost
    defects.missing_report = take(quiet or plain or [(s, s.images[0]) for s in studies])[0].study_id
    return defects


def _jpeg(im: _Image, seed: int, index: int) -> bytes:
    """The file content of one image; its own random stream, so images can render in parallel."""
    rng = np.random.default_rng([seed, 1, index])
    if im.defect == "corrupt":
        data = bytearray(rng.bytes(int(rng.integers(2048, 8192))))
        data[0] = 0x00  # never a JPEG start-of-image marker
        return bytes(data)
    if im.view in FRONTAL:
        pixels = render_chest(im.width, im.height, rng, im.findings)
    else:
        pixels = render_lateral(im.width, im.height, rng)
    data = encode(pixels, "jpeg", 95)
    return data[: len(data) // 2] if im.defect == "truncated" else data


def _write_images(root: Path, studies: list[_Study], seed: int) -> list[Path]:
    jobs = [(root / s.folder / f"{im.dicom_id}.jpg", im) for s in studies for im in s.images]
    for folder in sorted({path.parent for path, _ in jobs}):
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as workers:
        contents = workers.map(lambda k: _jpeg(jobs[k][1], seed, k), range(len(jobs)))
        for (path, _), data in zip(jobs, contents, strict=True):
            path.write_bytes(data)
    return [path for path, _ in jobs]


def _positives(study: _Study) -> int:
    """How many of the 8 pathologies the study's labels mark positive."""
    return sum(study.labels.get(p) == 1.0 for p in pathologies())


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _write_tables(root: Path, studies: list[_Study], found: _Defects,
                  defects: np.random.Generator | None) -> tuple[list[Path], dict[str, str]]:
    """Metadata, split, CheXpert, NegBio, 2.1.0 test labels, IMAGE_FILENAMES, README, LICENSE, and the
    table defects placed (when ``defects`` is a random stream: :mod:`mimic_table_defects`)."""
    cfg = config()
    by_study = sorted(studies, key=lambda s: (s.subject_id, s.study_id))
    images = [(s, im) for s in by_study for im in sorted(s.images, key=lambda im: im.dicom_id)]
    view = cfg["view_meanings"]
    metadata = [
        (im.dicom_id, s.subject_id, s.study_id, s.exam["name"], im.view, im.height, im.width, s.date,
         repr(s.time), s.exam["name"], view[im.view], s.orientation)
        for s, im in images
    ]
    split = [(im.dicom_id, s.study_id, s.subject_id, s.split)
             for s, im in images if im.dicom_id != found.missing_split]
    labels = [(s.subject_id, s.study_id, *(_label(s.labels.get(n)) for n in cfg["labels"])) for s in by_study]
    test = sorted(row[1:] for row, s in zip(labels, by_study, strict=True) if s.split == "test")
    renamed = cfg["test_set_renames"]
    names = ("IMAGE_FILENAMES", "README", "LICENSE.txt")
    texts = ("".join(f"{s.folder}/{im.dicom_id}.jpg\n" for s, im in images), cfg["readme"], cfg["license"])
    negbio = list(labels)
    placed = {}
    if defects is not None:
        avoid = {d for d in (found.truncated, found.corrupt, found.missing_split) if d}
        avoid |= {im.dicom_id for s in studies if s.study_id == found.missing_report for im in s.images}
        placed = add_table_defects(defects, metadata, split, labels, cfg["labels"], avoid)
    return [
        tables.write_csv(root / METADATA, cfg["metadata_columns"], metadata),
        tables.write_csv(root / SPLIT, cfg["split_columns"], split),
        tables.write_csv(root / CHEXPERT, ["subject_id", "study_id", *cfg["labels"]], labels),
        tables.write_csv(root / NEGBIO, ["subject_id", "study_id", *cfg["labels"]], negbio),
        tables.write_csv(root / TEST_LABELS, ["study_id", *(renamed.get(n, n) for n in cfg["labels"])], test),
        *(tables.write(root / name, text.encode()) for name, text in zip(names, texts, strict=True)),
    ], placed


def write_mimic_sample(
    out: Path | str, subjects: int = 12, seed: int = 0, full_size_images: int = 3, defects: bool = True,
    table_defects: bool = False,
) -> MimicSample:
    """Write a synthetic MIMIC-CXR-JPG tree (+ reports, + MS-CXR under ``ms-cxr/``) into ``out``.

    ``full_size_images`` images get a real full-resolution size (MS-CXR images first); the rest are
    small (long side 320-640 px) to keep tests fast. With ``defects`` one JPEG is truncated, one is
    random bytes, one study has no report and one image is missing from the split CSV. With
    ``table_defects`` the CSVs also carry duplicated, conflicting and invalid rows
    (:mod:`cxrdata.sample.mimic_table_defects`; ``MimicSample.table_defects`` says where).
    """
    if subjects < 1:
        raise ValueError("subjects must be at least 1")
    root = Path(out)
    rng = np.random.default_rng(seed)
    studies = _plan(rng, subjects)
    layouts = place_layouts(studies, seed)
    mscxr, full = _choose_images(rng, studies, full_size_images)
    _sizes(rng, studies, full)
    boxes = _place_findings(studies, mscxr)
    found = _choose_defects(rng, studies, mscxr | {im.dicom_id for im in full}) if defects else _Defects()

    table_rng = np.random.default_rng([seed, 6]) if table_defects else None
    files, placed = _write_tables(root, studies, found, table_rng)
    files += _write_images(root, studies, seed)
    reports = [tables.write(root / f"{s.folder}.txt", s.report.replace("\n", s.line_end).encode())
               for s in studies if s.study_id != found.missing_report]
    tables.write_sha256sums(root, files)
    written = write_mscxr(root, boxes, config()["mscxr_categories"], defects=defects)

    images = [im for s in studies for im in s.images]
    return MimicSample(
        root=root, seed=seed, subjects=subjects, studies=len(studies), images=len(images),
        frontal_images=sum(im.view in FRONTAL for im in images),
        lateral_images=sum(im.view not in FRONTAL for im in images),
        reports=len(reports), layouts=layouts, table_defects=placed,
        single_pathology_studies=sum(_positives(s) == 1 for s in studies),
        image_sizes={im.dicom_id: (im.width, im.height) for im in images},
        full_size=tuple(im.dicom_id for im in full),
        truncated_jpeg=found.truncated, corrupt_jpeg=found.corrupt,
        missing_report=found.missing_report, missing_split=found.missing_split,
        mscxr_csv={v: f.csv for v, f in written.items()},
        mscxr_json={v: f.json for v, f in written.items()},
        mscxr_rows={v: f.rows for v, f in written.items()},
        mscxr_groups={v: f.groups for v, f in written.items()},
        mscxr_images={v: f.images for v, f in written.items()},
        mscxr_duplicate_rows={v: f.duplicate_rows for v, f in written.items()},
    )
