"""Checking one ``grounded_reports_*.json`` record before it is trusted (docs/formats/padchest-gr.md).

The file is machine-written, so a value of the wrong type means an edited or damaged copy: it is
never coerced (``"abnormal": "false"`` is not True, ``"labels": "cardiomegaly"`` is not ``[]``,
``"boxes": 5`` is not a box list). The record is rejected with the field named instead. Absent
optional keys are normal: negative sentences have no ``boxes``/``extra_boxes``/``labels``/
``locations``/``progression`` at all, and ``null`` means the same as absent. One malformed box
inside a list is not a record problem: it becomes a rejected region later.
"""

from __future__ import annotations

from typing import Any

LIST_KEYS = ("boxes", "extra_boxes", "labels", "locations")
TEXT_LISTS = ("labels", "locations")
ID_KEYS = ("StudyID", "ImageID", "PreviousStudyID", "PreviousImageID")

Problem = tuple[str, str]  # (reason, detail)


def _kind(value: Any) -> str:
    return f"{value!r} (a JSON {type(value).__name__.replace('str', 'string').replace('NoneType', 'null')})"


def finding_problem(finding: Any, k: int) -> Problem | None:
    """Why finding ``k`` cannot be read as it is, or None."""
    where = f"findings[{k}]"
    if not isinstance(finding, dict):
        return "bad_value", f"{where} is {_kind(finding)}, not an object"
    for key in ("sentence_en", "sentence_es"):
        if not isinstance(finding.get(key), str):
            return "bad_value", f"{where}.{key} is {_kind(finding.get(key))}, expected a string"
    if not isinstance(finding.get("abnormal"), bool):
        return "bad_value", f"{where}.abnormal is {_kind(finding.get('abnormal'))}, expected true or false"
    for key in LIST_KEYS:
        value = finding.get(key)
        if value is not None and not isinstance(value, list):
            return "bad_value", f"{where}.{key} is {_kind(value)}, expected a list"
    for key in TEXT_LISTS:
        if not all(isinstance(v, str) for v in finding.get(key) or []):
            return "bad_value", f"{where}.{key} holds a value that is not a string: {finding[key]!r}"
    progression = finding.get("progression")
    if progression is not None and not isinstance(progression, str):
        return "bad_value", f"{where}.progression is {_kind(progression)}, expected a string or null"
    return None


def entry_problem(entry: dict[str, Any]) -> Problem | None:
    """Why a record cannot be read as it is (its ids aside: those depend on the pairing), or None."""
    for key in ID_KEYS:
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return "bad_value", f"{key} is {_kind(entry[key])}; ids are strings (a number loses digits)"
    findings = entry.get("findings")
    if findings is None or findings == []:
        return "findings_missing", "the record has no findings (no report sentences)"
    if not isinstance(findings, list):
        return "bad_value", f"findings is {_kind(findings)}, expected a list of sentences"
    return next((p for k, f in enumerate(findings) if (p := finding_problem(f, k))), None)


def grounded(entry: dict[str, Any]) -> frozenset[tuple[str, int, int]]:
    """(sentence_en, boxes, extra_boxes) of each abnormal, labelled sentence of a checked record: what the master
    table has one row per label for (``sentence_en``, ``boxes_count``, ``extra_boxes_count``)."""
    return frozenset((" ".join(f["sentence_en"].split()), len(f.get("boxes") or []), len(f.get("extra_boxes") or []))
                     for f in entry["findings"] if f["abnormal"] and f.get("labels"))
