"""A synthetic PadChest-GR download in the real on-disk format (FORMATS.md section 5, docs/formats/padchest-gr.md).

Layout written under ``out``::

    grounded_reports_20240819.json             list of study records (one image each)
    master_table.csv                           23 columns, one row per (study, label), studies in JSON order
    PadChest_GR/<StudyID>_<6 chars>.png         16-bit grayscale PNGs, 12-bit-ish values
    PadChest_GR_progression_prior_studies/     PNGs of the prior studies referenced for progression

Two real variants of the JSON: ``ids=True`` (records carry ``StudyID``/``ImageID``, as public readers
use it) and ``ids=False`` (a real 4,555-record copy has neither: records are in master-table order).
``nested=True`` gives the layout of that copy's download: images under
``Padchest_GR_files/PadChest_GR/`` and the prior studies nested twice
(``PadChest_GR_progression_prior_studies/PadChest_GR_progression_prior_studies/``).

Quirks reproduced: 38-39 digit decimal Study/Patient ids, a StudyID with a ``-2`` suffix and 37 digits,
prior ImageIDs of the original PadChest (45 digits + ``_NN-NNN-NNN.png``) beside GR-style ones,
``ImageID`` = file name with ``.png``, negative sentences without ``boxes``/``labels``/... keys,
positive sentences with empty boxes, ``extra_boxes`` from a second reader (sometimes absent as a set,
sometimes a different count), normalised xyxy boxes with 8 decimals, python-list-repr ``locations``,
``Normal`` rows with empty sentences, pandas-style ``True``/``False``, split ``validation``,
patient-disjoint splits. Defects, always: one 8-bit PNG where 16-bit is expected, one ImageID whose PNG
is missing. With ``defects`` (the default), studies appended after the good ones: an entry without
``findings``, ``"abnormal": "false"`` (a string), ``"labels": "cardiomegaly"`` (a string),
``"boxes": 5``, a StudyID/ImageID with ``..`` and ``/``, and (``ids=True``) an entry repeated verbatim
and a study whose two entries differ; the master table gives one good study a box count that its
record does not have (with ``ids=False`` its pairing does not verify). :attr:`PadchestGrSample.rejected`
says what a reader must reject, record by record. The ``progression`` vocabulary is unknown
(FORMATS.md open question 4); ours is invented.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cxrdata.recipe import option
from cxrdata.sample import _synth
from cxrdata.sample._synth import Box

REPORTS_FILE = "grounded_reports_20240819.json"
MASTER_TABLE = "master_table.csv"
IMAGE_DIR = "PadChest_GR"
NESTED_IMAGE_DIR = "Padchest_GR_files/PadChest_GR"
PRIOR_DIR = "PadChest_GR_progression_prior_studies"
NESTED_PRIOR_DIR = f"{PRIOR_DIR}/{PRIOR_DIR}"
MASTER_COLUMNS: tuple[str, ...] = (
    "StudyID", "ImageID", "label", "boxes_count", "extra_boxes_count", "locations", "prior_study",
    "progression_status", "prior_imageID", "sentence_en", "sentence_es", "study_is_benchmark",
    "study_is_validation", "split", "PatientID", "patient_is_benchmark", "PatientBirth", "PatientSex_DICOM",
    "StudyDate_DICOM", "StudyDate", "PatientAge", "label_group", "Year",
)
SPLIT_CYCLE = ("train", "train", "validation", "test", "train", "test")  # per patient
PROGRESSION = ("improved", "worsened", "stable")  # invented (FORMATS.md 8.4)



@dataclass(frozen=True)
class SampleOptions:
    """``cxrdata sample-data padchest-gr``: which of the real variants to write."""

    ids: bool = option(True, "Write the grounded-reports JSON with StudyID/ImageID (--no-ids: the variant without, "
                             "as one real copy has, FORMATS 5.2).", flag="--ids/--no-ids")
    nested: bool = option(False, "Padchest_GR_files/PadChest_GR/ and the prior studies nested twice.")


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
_MISSING_PNG_AT, _EIGHT_BIT_AT, _SUFFIXED_AT = 1, 2, 4
ORIGINAL_PADCHEST_PREFIX = "216840111366964"  # the start of original PadChest ImageIDs (45 digits)


@dataclass(frozen=True)
class PadchestGrSample:
    """What was written, with the ids of every deliberate defect. The studies are the good ones (the defect
    studies appended after them are described by :attr:`rejected` only)."""

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
    ids: bool  # the JSON records carry StudyID/ImageID
    image_dir: str  # relative to root
    prior_dir: str
    entries: int  # records in the JSON
    rejected: dict[str, str]  # record id -> reason a reader must reject it with (ImageID, or entry-<k> by order)
    duplicate_entries: int  # records repeating an earlier record verbatim (kept once, note duplicate_entry)
    mismatched_study: str | None  # StudyID whose master-table box count disagrees with its record
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return (f"wrote {len(self.study_ids)} studies ({self.positive_sentences} positive and "
                f"{self.negative_sentences} negative sentences) to {self.root}")


def write_padchest_gr_sample(
    out: Path | str, studies: int = 20, seed: int = 0, full_size: bool = False, ids: bool = True,
    nested: bool = False, defects: bool = True,
) -> PadchestGrSample:
    """Write a synthetic PadChest-GR tree under ``out``; byte-identical for the same arguments."""
    if studies < 12:
        raise ValueError("write_padchest_gr_sample needs at least 12 studies")
    root = Path(out)
    image_dir, prior_dir = (NESTED_IMAGE_DIR, NESTED_PRIOR_DIR) if nested else (IMAGE_DIR, PRIOR_DIR)
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
        if index == _SUFFIXED_AT:  # a re-issued study: 37 digits and a suffix
            study_id = f"{study_id[:37]}-2"
        image_id = f"{study_id}_{_synth.alnum(rng, 6)}.png"
        size = _synth.image_size(rng, full_size)
        sizes[image_id] = size
        prior_study = prior_image = None
        if index % 4 == 1:  # a study with a prior, referenced for progression
            prior_study = _synth.digit_id(rng, 38 + int(rng.integers(0, 2)))
            prior_image = (f"{prior_study}_{_synth.alnum(rng, 6)}.png" if len(priors) % 2 == 0 else
                           f"{ORIGINAL_PADCHEST_PREFIX}{_synth.digit_id(rng, 30)}_{_original_suffix(rng)}.png")
            priors[study_id] = prior_image
            files.append(_write_png(root / prior_dir / prior_image, size, pixel_rng, bits16=True))
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
        path = root / image_dir / image_id
        if index == _MISSING_PNG_AT:
            continue
        drawn: list[tuple[str, Box]] = [
            (f["labels"][0], (b[0], b[1], b[2], b[3])) for f in findings if f["abnormal"] for b in f["boxes"]
        ]
        files.append(_write_png(path, size, pixel_rng, bits16=index != _EIGHT_BIT_AT, findings=drawn))
    good = list(records)
    rejected = {records[_MISSING_PNG_AT]["ImageID"]: "image_missing",
                records[_EIGHT_BIT_AT]["ImageID"]: "png_not_16bit"}
    mismatched = None
    if defects:
        mismatched = _mismatch_a_box_count(records, rows)
        if not ids:  # paired by order: the mismatched study's record is rejected under its position
            rejected[f"entry-{[r['StudyID'] for r in good].index(mismatched)}"] = "pairing_mismatch"
        defect_rng = np.random.default_rng([seed, 5, 2])
        for planted in _defect_studies(defect_rng, patients, with_duplicates=ids):
            for entry, reason in planted.entries:
                record_id = _record_id(entry, len(records), records, ids, reason)
                records.append(entry)
                if reason:
                    rejected[record_id] = reason
            rows += planted.rows
            if planted.png:
                files.append(_write_png(root / image_dir / planted.image_id, (96, 112), pixel_rng, bits16=True))

    root.mkdir(parents=True, exist_ok=True)
    reports = root / REPORTS_FILE
    written = records if ids else [_without_ids(r) for r in records]
    reports.write_text(json.dumps(written, ensure_ascii=False), encoding="utf-8")
    master = root / MASTER_TABLE
    with master.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MASTER_COLUMNS)
        writer.writerows(rows)
    files[:0] = [reports, master]

    sentences = [f for r in good for f in r["findings"]]
    positives = [f for f in sentences if f["abnormal"]]
    return PadchestGrSample(
        root=root,
        study_ids=tuple(r["StudyID"] for r in good),
        image_ids={r["StudyID"]: r["ImageID"] for r in good},
        patient_ids={s: i["patient"]["id"] for s, i in info.items()},
        splits={s: i["patient"]["split"] for s, i in info.items()},
        image_sizes=sizes,
        normal_study_ids=tuple(r["StudyID"] for r in good if not any(f["abnormal"] for f in r["findings"])),
        prior_image_ids=priors,
        positive_sentences=len(positives),
        negative_sentences=len(sentences) - len(positives),
        ungrounded_positive_sentences=sum(1 for f in positives if not f["boxes"]),
        boxes=sum(len(f["boxes"]) for f in positives),
        extra_boxes=sum(len(f["extra_boxes"]) for f in positives),
        master_rows=len(rows),
        eight_bit_png=good[_EIGHT_BIT_AT]["ImageID"],
        missing_png=good[_MISSING_PNG_AT]["ImageID"],
        ids=ids, image_dir=image_dir, prior_dir=prior_dir, entries=len(written), rejected=rejected,
        duplicate_entries=sum(1 for k, r in enumerate(records) if r in records[:k]),
        mismatched_study=mismatched,
        files=files,
    )


MALFORMED = ("findings_missing", "bad_value")  # rejected before pairing: by order, their id is their position


def _record_id(entry: dict, k: int, earlier: list[dict], ids: bool, reason: str) -> str:
    """The id a reader gives entry ``k``: its ImageID (``#entry-<k>`` for a later, different copy), or, paired
    by order, ``entry-<k>`` when the entry is malformed."""
    if not ids:
        return f"entry-{k}" if reason in MALFORMED else entry["ImageID"]
    copies = [e for e in earlier if e["ImageID"] == entry["ImageID"]]
    return f"{entry['ImageID']}#entry-{k}" if copies else entry["ImageID"]


def _without_ids(record: dict) -> dict:
    """The record as the real copy without ids has it: PreviousStudyID, PreviousImageID, findings."""
    return {k: v for k, v in record.items() if k not in ("StudyID", "ImageID")}


def _original_suffix(rng: np.random.Generator) -> str:
    """The ``NN-NNN-NNN`` tail of an original PadChest ImageID."""
    a, b, c = (int(rng.integers(0, 10 ** n)) for n in (2, 3, 3))
    return f"{a:02d}-{b:03d}-{c:03d}"


def _mismatch_a_box_count(records: list[dict], rows: list[list[str]]) -> str:
    """Add one to the master table's boxes_count of the last good train study with a grounded sentence (the
    smaller splits keep all their studies); its StudyID."""
    split = MASTER_COLUMNS.index("split")
    train = {row[0] for row in rows if row[split] == "train"}
    study = next(r for r in reversed(records)
                 if r["StudyID"] in train and any(f["abnormal"] and f["boxes"] for f in r["findings"]))
    sentence = next(f["sentence_en"] for f in study["findings"] if f["abnormal"] and f["boxes"])
    for row in rows:
        if row[0] == study["StudyID"] and row[MASTER_COLUMNS.index("sentence_en")] == sentence:
            row[3] = str(int(row[3]) + 1)
    return study["StudyID"]


@dataclass(frozen=True)
class _Planted:
    """A defect study: its JSON entries (each with the reason a reader must reject it, or ""), its master
    rows and whether it has a PNG."""

    image_id: str
    entries: list[tuple[dict, str]]
    rows: list[list[str]]
    png: bool


def _defect_studies(rng: np.random.Generator, patients: list[dict], with_duplicates: bool) -> list[_Planted]:
    """The studies appended after the good ones, each carrying one defect (see the module docstring)."""
    cardio = next(f for f in FINDINGS if f.labels == ("cardiomegaly",))
    positive = {"sentence_en": cardio.en, "sentence_es": cardio.es, "abnormal": True,
                "boxes": [[0.3, 0.45, 0.7, 0.75]], "extra_boxes": [], "labels": list(cardio.labels),
                "locations": list(cardio.locations), "progression": None}
    negative = {"sentence_en": NEGATIVES[0][0], "sentence_es": NEGATIVES[0][1], "abnormal": False}
    # (name, findings of the entry, the findings its master rows describe, the reason it is rejected)
    plans: list[tuple[str, list[dict], list[dict], str]] = [
        ("no-findings", [negative], [negative], "findings_missing"),
        ("abnormal-string", [{**negative, "abnormal": "false"}], [negative], "bad_value"),
        ("labels-string", [{**positive, "labels": "cardiomegaly"}], [positive], "bad_value"),
        ("boxes-number", [{**positive, "boxes": 5}], [positive], "bad_value"),
        ("climbs-out", [negative], [negative], "unsafe_id"),
    ]
    if with_duplicates:
        plans += [("repeated", [positive, negative], [positive, negative], ""),
                  ("conflicting", [negative], [negative], "conflicting_entries")]
    planted = []
    for k, (name, findings, master_findings, reason) in enumerate(plans):
        patient = patients[k % len(patients)]
        study_id = "../../evil" if name == "climbs-out" else _synth.digit_id(rng, 38)
        image_id = f"{study_id}_{_synth.alnum(rng, 6)}.png"
        entry = {"StudyID": study_id, "ImageID": image_id, "PreviousStudyID": None, "PreviousImageID": None,
                 "findings": copy.deepcopy(findings)}
        if name == "no-findings":
            del entry["findings"]
        entries = [(entry, reason)]
        if name == "repeated":
            entries.append((copy.deepcopy(entry), ""))
        elif name == "conflicting":  # the same study twice, the second with another sentence
            other = copy.deepcopy(entry)
            other["findings"][0]["sentence_en"] = NEGATIVES[1][0]
            entries.append((other, reason))
        rows = _master_rows(study_id, image_id, None, master_findings, patient, 2015, 20150601)
        planted.append(_Planted(image_id, entries, rows, png=name != "climbs-out"))
    return planted


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
