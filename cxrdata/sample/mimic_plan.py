"""The plan of the synthetic MIMIC-CXR-JPG sample, drawn before any image size or defect: patients,
studies (dates, exams, views, report styles), what each study shows, its report and the labels the report
implies, and the chest-frame boxes of its findings. The sample's values come from ``mimic.yaml``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TypeVar

import numpy as np

from cxrdata.boxes import Box
from cxrdata.sample.chest import frame_regions
from cxrdata.sample.reports import STYLES, Finding, ReportPlan, compose_report, pick_finding
from cxrdata.vocabulary import pathologies
from cxrdata.yamlfiles import load_yaml

Rng = np.random.Generator
T = TypeVar("T")
Kind = tuple[list[str], list[str]]  # (positive pathologies, uncertain pathologies) of a study
FRONTAL = ("PA", "AP")


@cache
def config() -> dict:
    """Values of the sample (``mimic.yaml``): columns, exams, sizes, shares."""
    return load_yaml(resources.files("cxrdata.sample").joinpath("mimic.yaml").read_text())


@dataclass
class StudyImage:
    dicom_id: str
    view: str
    width: int = 0
    height: int = 0
    findings: list[tuple[str, Box]] = field(default_factory=list)  # what is drawn, canonical boxes
    defect: str = ""  # "", "truncated" or "corrupt"


@dataclass
class Study:
    subject_id: int
    date: int
    time: float
    exam: dict
    orientation: str
    style: str
    images: list[StudyImage]
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


def pick(rng: Rng, options: Sequence[T]) -> T:
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
    later = ["standard" if rng.random() < 0.6 else str(pick(rng, STYLES)) for _ in range(n)]
    return (first + later)[:n]


def _frame_box(rng: Rng, regions: tuple[str, ...], cardiomegaly: bool, jitter: float) -> Box:
    """Union of chest regions, each side pulled in by up to ``jitter`` of the box size."""
    boxes = [frame_regions(cardiomegaly)[name] for name in regions]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    dx0, dy0, dx1, dy1 = rng.uniform(0.0, jitter, 4)
    w, h = x1 - x0, y1 - y0
    return (x0 + dx0 * w, y0 + dy0 * h, x1 - dx1 * w, y1 - dy1 * h)


def _study(rng: Rng, subject: int, date: dt.date, kind: Kind, style: str, earlier: list[Finding]) -> Study:
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
    views = pick(rng, exam["views"])
    return Study(
        subject_id=subject, date=int(date.strftime("%Y%m%d")), time=_time(rng), exam=exam,
        orientation=str(pick(rng, exam["orientation"])), style=style,
        images=[StudyImage(_dicom_id(rng), str(v)) for v in views],
        positives=positives, frame_boxes=frame_boxes, labels=report.labels, report=report.text, plan=plan,
        report_state=report_state,
    )


def plan_studies(rng: Rng, subjects: int) -> list[Study]:
    """Subjects, studies, images, labels and reports, before any size or defect is chosen."""
    cfg = config()
    subject_ids = sorted(_ids(rng, subjects, 10_000_000, 20_000_000))
    counts = [int(rng.integers(1, 4)) for _ in subject_ids]
    kinds, styles = _kinds(rng, sum(counts)), _styles(rng, sum(counts))
    study_ids = iter(_ids(rng, sum(counts), 50_000_000, 60_000_000))
    splits = _shares(rng, subjects, cfg["split_shares"], "train")
    mscxr_shares = {k: v for k, v in cfg["mscxr_splits"].items() if k != "train"}
    mscxr_splits = _shares(rng, subjects, mscxr_shares, "train")
    studies: list[Study] = []
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
