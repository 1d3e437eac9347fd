"""``master_table.csv`` as studies, and pairing a grounded-reports file without ids with them by order.

A real copy of ``grounded_reports_20240819.json`` has no ``StudyID``/``ImageID`` (FORMATS.md 5.2); its
record 0 is the master table's first study. The master table's study order is the order in which each
StudyID first appears in the file. Record k is paired with study k, and every pair is verified: the set
of (sentence_en, number of boxes, number of extra boxes) of the record's abnormal, labelled sentences
must equal that of the study's master rows (one row per label: ``sentence_en``, ``boxes_count``,
``extra_boxes_count``; ``Normal`` rows have no sentence), and a PreviousImageID the record names must
be the study's ``prior_imageID`` when that is given too. A pair that does not verify is rejected
(``pairing_mismatch``). The whole file is refused, in one line, when the counts differ, when one of the
first checked records does not verify (the well-formed records up to the :data:`FIRST_CHECKED`-th with
an abnormal sentence), or when a later record that fails matches its neighbour's study instead (the
order has slipped). A normal study verifies against any normal record: two normal studies swapped
are not detectable, a limit of the file, not of the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.io.csvfiles import read_text_csv
from cxrdata.sources.padchest_gr_entries import Problem, grounded

FIRST_CHECKED = 5  # records with an abnormal sentence that must all verify before order pairing is trusted
STUDY_COLUMNS = ("ImageID", "PatientID", "split")  # one value per study


@dataclass(frozen=True)
class Study:
    """One study of the master table: its ids, split, prior and grounded sentences."""

    study_id: str
    image_id: str | None
    patient_id: str | None
    split: str | None
    prior_image_id: str | None
    grounded: frozenset[tuple[str, int | None, int | None]]
    conflict: str | None  # why its rows disagree on a per-study column, or None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_studies(path: Path) -> list[Study]:
    """The master table's studies in order of first appearance; an empty table is refused in one line."""
    frame = read_text_csv(path)
    if frame.height == 0:
        raise CxrdataError(f"{path} has a header but no rows: restore it from the BIMCV download")
    rows: dict[str | None, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        rows.setdefault(row["StudyID"], []).append(row)
    studies = []
    for study_id, group in rows.items():
        first = group[0]
        conflict = next((f"master_table.csv rows of study {study_id} disagree on {c}: "
                         f"{sorted({str(r[c]) for r in group})}" for c in STUDY_COLUMNS
                         if len({r[c] for r in group}) > 1), None)
        sentences = frozenset((" ".join(r["sentence_en"].split()), _int(r.get("boxes_count")),
                               _int(r.get("extra_boxes_count"))) for r in group if r.get("sentence_en"))
        studies.append(Study(study_id or "", first["ImageID"], first["PatientID"], first["split"],
                             first.get("prior_imageID") or None, sentences, conflict))
    return studies


def pairing_problem(entry: dict[str, Any], study: Study) -> str | None:
    """Why a checked record is not the study's (sentences, box counts, prior), or None."""
    got = grounded(entry)
    if got != study.grounded:
        missing, extra = sorted(study.grounded - got), sorted(got - study.grounded)
        return (f"study {study.study_id}: the master table has {missing or 'nothing more'}, the record has "
                f"{extra or 'nothing more'} (sentence, boxes, extra boxes)")
    prior = entry.get("PreviousImageID")
    if prior and study.prior_image_id and prior != study.prior_image_id:
        return f"study {study.study_id}: PreviousImageID {prior} but the master table's prior_imageID is " \
               f"{study.prior_image_id}"
    return None


def pair_by_order(entries: list[dict[str, Any]], problems: list[Problem | None], studies: list[Study],
                  name: str) -> list[str | None]:
    """Per record: None when it pairs with the study at its position, else why not (its ``problems`` entry
    aside: a malformed record is not checked). Raises CxrdataError when the file cannot be paired at all."""
    if len(entries) != len(studies):
        raise CxrdataError(f"{name} has {len(entries)} records without StudyID/ImageID but master_table.csv lists "
                           f"{len(studies)} studies: they cannot be paired by order (a truncated or different file?)")
    checks = [None if problems[k] else pairing_problem(e, studies[k]) for k, e in enumerate(entries)]
    informative = 0
    for k, entry in enumerate(entries):
        if informative >= FIRST_CHECKED:
            break
        if problems[k] is None:
            if checks[k] is not None:
                raise CxrdataError(f"{name} has no StudyID/ImageID and its first records do not match "
                                   f"master_table.csv's studies in order (record {k}, {checks[k]}): cannot pair "
                                   "them; use a copy of the file with ids, or the master table it came with")
            informative += bool(grounded(entry))
    for k, problem in enumerate(checks):
        if problem is not None and grounded(entries[k]):
            slipped = [j for j in (k - 1, k + 1)
                       if 0 <= j < len(studies) and not pairing_problem(entries[k], studies[j])]
            if slipped:
                raise CxrdataError(f"{name}: record {k} matches master_table.csv's study {slipped[0]} "
                                   f"({studies[slipped[0]].study_id}), not study {k}: the records are out of step "
                                   "with the master table, so none can be paired by order")
    return checks
