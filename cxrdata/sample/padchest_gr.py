"""A synthetic PadChest-GR download in the real on-disk format (FORMATS.md section 5).

Layout written under ``out``::

    grounded_reports_20240819.json             list of study records (one image each)
    master_table.csv                           23 columns, one row per (study, label)
    PadChest_GR/<StudyID>_<6 chars>.png         16-bit grayscale PNGs, 12-bit-ish values
    PadChest_GR_progression_prior_studies/     PNGs of the prior studies referenced for progression

Quirks reproduced: 38-39 digit decimal Study/Patient ids, ``ImageID`` = file name with ``.png``,
negative sentences without ``boxes``/``labels``/... keys, positive sentences with empty boxes,
``extra_boxes`` from a second reader (sometimes absent as a set, sometimes a different count),
normalised xyxy boxes with 8 decimals, python-list-repr ``locations``, ``Normal`` rows with empty
sentences, pandas-style ``True``/``False``, split ``validation``, patient-disjoint splits.
Defects: one 8-bit PNG where 16-bit is expected, one ImageID whose PNG is missing.
The ``progression`` vocabulary is unknown (FORMATS.md open question 4); ours is invented.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cxrdata.sample import _synth
from cxrdata.sample._synth import Box

REPORTS_FILE = "grounded_reports_20240819.json"
MASTER_TABLE = "master_table.csv"
IMAGE_DIR = "PadChest_GR"
PRIOR_DIR = "PadChest_GR_progression_prior_studies"
MASTER_COLUMNS: tuple[str, ...] = (
    "StudyID", "ImageID", "label", "boxes_count", "extra_boxes_count", "locations", "prior_study",
    "progression_status", "prior_imageID", "sentence_en", "sentence_es", "study_is_benchmark",
    "study_is_validation", "split", "PatientID", "patient_is_benchmark", "PatientBirth", "PatientSex_DICOM",
    "StudyDate_DICOM", "StudyDate", "PatientAge", "label_group", "Year",
)
SPLIT_CYCLE = ("train", "train", "validation", "test", "train", "test")  # per patient
PROGRESSION = ("improved", "worsened", "stable")  # invented (FORMATS.md 8.4)


@dataclass(frozen=True)
class Finding:
    """One positive sentence template: PadChest labels/locations and the regions its boxes cover."""

    en: str
    es: str
    labels: tuple[str, ...]
    locations: tuple[str, ...]
    label_group: str
    regions: tuple[str, ...]  # ImaGenome region per box; empty = a positive sentence with no boxes


FINDINGS: tuple[Finding, ...] = (
    Finding("Minimal biapical pleural thickening.", "Mínimo engrosamiento pleural biapical.",
            ("apical pleural thickening",), ("pleural",), "pleural thickening",
            ("right apical zone", "left apical zone")),
    Finding("Slight blunting of the posterior left costophrenic angle.",
            "Discreto pinzamiento posterior de seno costofrénico izquierdo.",
            ("costophrenic angle blunting",), ("left costophrenic angle", "costophrenic angle"),
            "pleural effusion", ("left costophrenic angle",)),
    Finding("Cardiomegaly.", "Cardiomegalia.", ("cardiomegaly",), ("cardiac",), "cardiomegaly",
            ("cardiac silhouette",)),
    Finding("Nodule in the right middle lobe, 1 cm.", "Nódulo en lóbulo medio derecho, de 1 cm.",
            ("nodule",), ("right middle lobe",), "nodule", ("right mid lung zone",)),
    Finding("Elongation of the thoracic aorta.", "Elongación de aorta torácica.",
            ("aortic elongation",), ("aortic",), "aortic elongation", ("aortic arch",)),
    Finding("Laminar atelectasis in the left lung base.", "Atelectasia laminar en base pulmonar izquierda.",
            ("laminar atelectasis",), ("left lower lobe", "lung base"), "atelectasis", ("left lower lung zone",)),
    Finding("Alveolar pattern in the right lower lobe, consistent with pneumonia.",
            "Patrón alveolar en lóbulo inferior derecho, compatible con neumonía.",
            ("alveolar pattern", "pneumonia"), ("right lower lobe",), "pneumonia", ("right lower lung zone",)),
    Finding("Signs of COPD.", "Signos de EPOC.", ("COPD signs",), (), "COPD signs", ()),
    Finding("Dorsal scoliosis.", "Escoliosis dorsal.", ("scoliosis",), ("dorsal vertebrae",), "Other Entities", ()),
)
NEGATIVES: tuple[tuple[str, str], ...] = (
    ("No other significant alterations.", "Sin otras alteraciones significativas."),
    ("No pleural effusion.", "No se observa derrame pleural."),
    ("No pulmonary infiltrates.", "Sin infiltrados pulmonares."),
    ("Normal cardiothoracic index.", "Índice cardiotorácico normal."),
)
_MISSING_PNG_AT, _EIGHT_BIT_AT = 1, 2


@dataclass(frozen=True)
class PadchestGrSample:
    """What was written, with the ids of every deliberate defect."""

    root: Path
    study_ids: tuple[str, ...]
    image_ids: dict[str, str]  # StudyID -> ImageID
    patient_ids: dict[str, str]  # StudyID -> PatientID
    splits: dict[str, str]  # StudyID -> train|validation|test
    image_sizes: dict[str, tuple[int, int]]  # ImageID -> (width, height)
    normal_study_ids: tuple[str, ...]
    prior_image_ids: dict[str, str]  # StudyID -> PreviousImageID, for studies with a prior
    positive_sentences: int
    negative_sentences: int
    ungrounded_positive_sentences: int  # abnormal sentences with boxes == []
    boxes: int  # reader 1
    extra_boxes: int  # reader 2
    master_rows: int
    eight_bit_png: str  # ImageID of the 8-bit PNG
    missing_png: str  # ImageID whose PNG was not written
    files: list[Path] = field(default_factory=list)


def write_padchest_gr_sample(
    out: Path | str, studies: int = 12, seed: int = 0, full_size: bool = False
) -> PadchestGrSample:
    """Write a synthetic PadChest-GR tree under ``out``; byte-identical for the same arguments."""
    if studies < 6:
        raise ValueError("write_padchest_gr_sample needs at least 6 studies")
    root = Path(out)
    rng = np.random.default_rng([seed, 5])
    pixel_rng = np.random.default_rng([seed, 5, 1])  # pictures draw from their own stream
    patients = _patients(rng, studies)
    records: list[dict] = []
    rows: list[list[str]] = []
    sizes: dict[str, tuple[int, int]] = {}
    priors: dict[str, str] = {}
    files: list[Path] = []
    info: dict[str, dict] = {}
    for index in range(studies):
        patient = patients[index % len(patients)]
        study_id = _synth.digit_id(rng, 38 + int(rng.integers(0, 2)))
        image_id = f"{study_id}_{_synth.alnum(rng, 6)}.png"
        size = _synth.image_size(rng, full_size)
        sizes[image_id] = size
        prior_study = prior_image = None
        if index % 4 == 1:  # a study with a prior, referenced for progression
            prior_study = _synth.digit_id(rng, 38 + int(rng.integers(0, 2)))
            prior_image = f"{prior_study}_{_synth.alnum(rng, 6)}.png"
            priors[study_id] = prior_image
            files.append(_write_png(root / PRIOR_DIR / prior_image, size, pixel_rng, bits16=True))
        findings = _findings(rng, index, size, with_prior=prior_study is not None)
        records.append({
            "StudyID": study_id, "ImageID": image_id,
            "PreviousStudyID": prior_study, "PreviousImageID": prior_image,
            "findings": findings,
        })
        year = int(rng.integers(2009, 2018))
        date = int(f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}")
        info[study_id] = {"patient": patient, "year": year, "date": date}
        rows.extend(_master_rows(study_id, image_id, prior_image, findings, patient, year, date))
        path = root / IMAGE_DIR / image_id
        if index == _MISSING_PNG_AT:
            continue
        drawn: list[tuple[str, Box]] = [
            (f["labels"][0], (b[0], b[1], b[2], b[3])) for f in findings if f["abnormal"] for b in f["boxes"]
        ]
        files.append(_write_png(path, size, pixel_rng, bits16=index != _EIGHT_BIT_AT, findings=drawn))

    root.mkdir(parents=True, exist_ok=True)
    reports = root / REPORTS_FILE
    reports.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    master = root / MASTER_TABLE
    with master.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MASTER_COLUMNS)
        writer.writerows(rows)
    files[:0] = [reports, master]

    sentences = [f for r in records for f in r["findings"]]
    positives = [f for f in sentences if f["abnormal"]]
    return PadchestGrSample(
        root=root,
        study_ids=tuple(r["StudyID"] for r in records),
        image_ids={r["StudyID"]: r["ImageID"] for r in records},
        patient_ids={s: i["patient"]["id"] for s, i in info.items()},
        splits={s: i["patient"]["split"] for s, i in info.items()},
        image_sizes=sizes,
        normal_study_ids=tuple(r["StudyID"] for r in records if not any(f["abnormal"] for f in r["findings"])),
        prior_image_ids=priors,
        positive_sentences=len(positives),
        negative_sentences=len(sentences) - len(positives),
        ungrounded_positive_sentences=sum(1 for f in positives if not f["boxes"]),
        boxes=sum(len(f["boxes"]) for f in positives),
        extra_boxes=sum(len(f["extra_boxes"]) for f in positives),
        master_rows=len(rows),
        eight_bit_png=records[_EIGHT_BIT_AT]["ImageID"],
        missing_png=records[_MISSING_PNG_AT]["ImageID"],
        files=files,
    )


def _patients(rng: np.random.Generator, studies: int) -> list[dict]:
    """About two studies for every three patients; the split is a property of the patient."""
    count = max(len(SPLIT_CYCLE), (studies * 2 + 2) // 3)
    patients = []
    for k in range(count):
        patients.append({
            "id": _synth.digit_id(rng, 38 + int(rng.integers(0, 2))),
            "split": SPLIT_CYCLE[k % len(SPLIT_CYCLE)],
            "birth": int(rng.integers(1925, 1995)),
            "sex": "FM"[int(rng.integers(0, 2))],
        })
    return patients


def _findings(rng: np.random.Generator, index: int, size: tuple[int, int], with_prior: bool) -> list[dict]:
    """Positive sentences (grounded or not) then negatives; every third study is normal (negatives only).

    The first study always has a two-box finding and a positive sentence without boxes.
    """
    out: list[dict] = []
    if index % 3 != 2:
        count = int(rng.integers(1, 4))
        chosen = {int(i) for i in rng.choice(len(FINDINGS), size=count, replace=False)}
        if index == 0:
            chosen |= {0, len(FINDINGS) - 1}
        for k in sorted(chosen):
            out.append(_positive(rng, FINDINGS[k], size, with_prior, mode=(index + k) % 3))
    negatives = rng.choice(len(NEGATIVES), size=int(rng.integers(1, 3)), replace=False)
    for k in sorted(int(i) for i in negatives):
        en, es = NEGATIVES[k]
        out.append({"sentence_en": en, "sentence_es": es, "abnormal": False})
    return out


def _positive(
    rng: np.random.Generator, finding: Finding, size: tuple[int, int], with_prior: bool, mode: int
) -> dict:
    """Reader 2 (``extra_boxes``) by ``mode``: 0 a jittered copy, 1 nothing, 2 a different box count."""
    anatomy = _synth.anatomy(*size)
    boxes = [_synth.sub_box(rng, anatomy[region]) for region in finding.regions]
    extra: list[tuple[float, ...]] = []
    if boxes and mode == 0:
        extra = [_jitter(rng, b) for b in boxes]
    elif len(boxes) > 1 and mode == 2:  # one box over all of reader 1's
        extra = [(min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                  max(b[3] for b in boxes))]
    elif boxes and mode == 2:  # the one box split into an upper and a lower half
        x0, y0, x1, y1 = boxes[0]
        extra = [(x0, y0, x1, (y0 + y1) / 2), (x0, (y0 + y1) / 2, x1, y1)]
    return {
        "sentence_en": finding.en,
        "sentence_es": finding.es,
        "abnormal": True,
        "boxes": [_norm(b) for b in boxes],
        "extra_boxes": [_norm(b) for b in extra],
        "labels": list(finding.labels),
        "locations": list(finding.locations),
        "progression": str(rng.choice(PROGRESSION)) if with_prior and rng.random() < 0.7 else None,
    }


def _jitter(rng: np.random.Generator, box: tuple[float, ...]) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    d = rng.uniform(-1, 1, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) * 0.1
    return tuple(float(v) for v in np.clip(np.array(box) + d, 0.0, 1.0))


def _norm(box: tuple[float, ...]) -> list[float]:
    """Normalised xyxy with 8 decimals, as in the real JSON."""
    return [round(float(v), 8) for v in box]


def _master_rows(
    study_id: str, image_id: str, prior_image: str | None, findings: list[dict], patient: dict,
    year: int, date: int,
) -> list[list[str]]:
    """One row per (study, label); a normal study gets one ``Normal`` row with empty sentences."""
    split = patient["split"]
    common_tail = [
        str(split == "test"), str(split == "validation"), split, patient["id"], str(split == "test"),
        str(patient["birth"]), patient["sex"], str(date), str(year), str(year - patient["birth"]),
    ]
    positives = [f for f in findings if f["abnormal"]]
    prior = [str(prior_image is not None), prior_image or ""]
    rows = []
    if not positives:
        rows.append([study_id, image_id, "Normal", "0", "0", "[]", prior[0], "", prior[1], "", "",
                     *common_tail, "Normal", str(year)])
    for f in positives:
        group = next(x.label_group for x in FINDINGS if x.en == f["sentence_en"])
        for label in f["labels"]:
            rows.append([
                study_id, image_id, label, str(len(f["boxes"])), str(len(f["extra_boxes"])),
                repr(f["locations"]), prior[0], f["progression"] or "", prior[1],
                f["sentence_en"], f["sentence_es"], *common_tail, group, str(year),
            ])
    return rows


def _write_png(
    path: Path, size: tuple[int, int], rng: np.random.Generator, bits16: bool,
    findings: Sequence[tuple[str, Box]] = (),
) -> Path:
    """A chest-like PNG: 16-bit with values in about [150, 4000], or the 8-bit defect."""
    width, height = size
    display = _synth.chest(width, height, rng, findings)
    pixels = (
        np.round(150 + display * 3850).astype(np.uint16) if bits16 else np.round(display * 255).astype(np.uint8)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), pixels):
        raise OSError(f"could not write {path}")
    return path
