"""The report side of the synthetic PadChest-GR sample: the sentence templates (English and Spanish, with
their PadChest labels, locations and the regions their boxes cover), each study's sentences with the boxes
of both readers as the grounded-reports JSON holds them, and the master-table rows that describe them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxrdata.sample import _synth

MASTER_COLUMNS: tuple[str, ...] = (
    "StudyID", "ImageID", "label", "boxes_count", "extra_boxes_count", "locations", "prior_study",
    "progression_status", "prior_imageID", "sentence_en", "sentence_es", "study_is_benchmark",
    "study_is_validation", "split", "PatientID", "patient_is_benchmark", "PatientBirth", "PatientSex_DICOM",
    "StudyDate_DICOM", "StudyDate", "PatientAge", "label_group", "Year",
)
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


def study_findings(rng: np.random.Generator, index: int, size: tuple[int, int], with_prior: bool) -> list[dict]:
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


def master_rows(
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
