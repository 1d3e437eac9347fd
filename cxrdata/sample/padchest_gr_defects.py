"""The defect studies of the synthetic PadChest-GR sample (``defects=True``), appended after the good ones,
and the ids a reader must reject them under; plus the master-table box count that disagrees with its record."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from cxrdata.sample import _synth
from cxrdata.sample.padchest_gr_reports import FINDINGS, MASTER_COLUMNS, NEGATIVES, master_rows

MALFORMED = ("findings_missing", "bad_value")  # rejected before pairing: by order, their id is their position


def reader_record_id(entry: dict, k: int, earlier: list[dict], ids: bool, reason: str) -> str:
    """The id a reader gives entry ``k``: its ImageID (``#entry-<k>`` for a later, different copy), or, paired
    by order, ``entry-<k>`` when the entry is malformed."""
    if not ids:
        return f"entry-{k}" if reason in MALFORMED else entry["ImageID"]
    copies = [e for e in earlier if e["ImageID"] == entry["ImageID"]]
    return f"{entry['ImageID']}#entry-{k}" if copies else entry["ImageID"]


def mismatch_a_box_count(records: list[dict], rows: list[list[str]]) -> str:
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
class PlantedStudy:
    """A defect study: its JSON entries (each with the reason a reader must reject it, or ""), its master
    rows and whether it has a PNG."""

    image_id: str
    entries: list[tuple[dict, str]]
    rows: list[list[str]]
    png: bool


def defect_studies(rng: np.random.Generator, patients: list[dict], with_duplicates: bool) -> list[PlantedStudy]:
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
        rows = master_rows(study_id, image_id, None, master_findings, patient, 2015, 20150601)
        planted.append(PlantedStudy(image_id, entries, rows, png=name != "climbs-out"))
    return planted
