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
from cxrdata.sample.padchest_gr_defects import defect_studies, mismatch_a_box_count, reader_record_id
from cxrdata.sample.padchest_gr_reports import MASTER_COLUMNS, master_rows, study_findings

__all__ = ["IMAGE_DIR", "MASTER_COLUMNS", "MASTER_TABLE", "NESTED_IMAGE_DIR", "NESTED_PRIOR_DIR", "PRIOR_DIR",
           "REPORTS_FILE", "PadchestGrSample", "SampleOptions", "write_padchest_gr_sample"]

REPORTS_FILE = "grounded_reports_20240819.json"
MASTER_TABLE = "master_table.csv"
IMAGE_DIR = "PadChest_GR"
NESTED_IMAGE_DIR = "Padchest_GR_files/PadChest_GR"
PRIOR_DIR = "PadChest_GR_progression_prior_studies"
NESTED_PRIOR_DIR = f"{PRIOR_DIR}/{PRIOR_DIR}"
SPLIT_CYCLE = ("train", "train", "validation", "test", "train", "test")  # per patient


@dataclass(frozen=True)
class SampleOptions:
    """``cxrdata sample-data padchest-gr``: which of the real variants to write."""

    ids: bool = option(True, "Write the grounded-reports JSON with StudyID/ImageID (--no-ids: the variant without, "
                             "as one real copy has, FORMATS 5.2).", flag="--ids/--no-ids")
    nested: bool = option(False, "Padchest_GR_files/PadChest_GR/ and the prior studies nested twice.")


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
        findings = study_findings(rng, index, size, with_prior=prior_study is not None)
        records.append({
            "StudyID": study_id, "ImageID": image_id,
            "PreviousStudyID": prior_study, "PreviousImageID": prior_image,
            "findings": findings,
        })
        year = int(rng.integers(2009, 2018))
        date = int(f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}")
        info[study_id] = {"patient": patient, "year": year, "date": date}
        rows.extend(master_rows(study_id, image_id, prior_image, findings, patient, year, date))
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
        mismatched = mismatch_a_box_count(records, rows)
        if not ids:  # paired by order: the mismatched study's record is rejected under its position
            rejected[f"entry-{[r['StudyID'] for r in good].index(mismatched)}"] = "pairing_mismatch"
        defect_rng = np.random.default_rng([seed, 5, 2])
        for planted in defect_studies(defect_rng, patients, with_duplicates=ids):
            for entry, reason in planted.entries:
                record_id = reader_record_id(entry, len(records), records, ids, reason)
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


def _without_ids(record: dict) -> dict:
    """The record as the real copy without ids has it: PreviousStudyID, PreviousImageID, findings."""
    return {k: v for k, v in record.items() if k not in ("StudyID", "ImageID")}


def _original_suffix(rng: np.random.Generator) -> str:
    """The ``NN-NNN-NNN`` tail of an original PadChest ImageID."""
    a, b, c = (int(rng.integers(0, 10 ** n)) for n in (2, 3, 3))
    return f"{a:02d}-{b:03d}-{c:03d}"


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
