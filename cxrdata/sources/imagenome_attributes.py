"""Chest ImaGenome gold attributes: ``gold_attributes_relations_500pts_500studies1st.txt`` (FORMATS.md §3.3).

A TSV with one row per (report sentence, region, attribute) of the first study of each of the 500
gold patients, manually corrected. Columns are read by name (the evidence, and which readers use
which column, is in docs/formats/chest-imagenome.md): ``image_id`` (with ``.dcm``), ``row_id``
(``"<study_id>|<sentence index>"``), ``bbox`` (the region), ``categoryID`` and ``label_name`` (the
attribute), ``context`` (``yes``/``no``: affirmed or negated) and ``relation`` (1/0, the same fact
as a number), ``sentence`` (raw text, line breaks kept), optionally ``section``, ``patient_id``,
``study_id``. At least one of ``context`` and ``relation`` must be there.

Each gold image gets ``sentence_regions``: one entry per (sentence, region) in file order, with
the gold box of that region (None for a region without one, e.g. ``left chest wall``), the sentence
index and text (whitespace collapsed), the section, the attributes as ``category|yes|label`` /
``category|no|label`` strings and, parallel to them, the ``relation`` flags as read (None when the
column is absent or empty).

Nothing is dropped silently (each case is a counted note in the manifest): a row repeated verbatim
is kept once (``attribute_row_duplicate``); one (sentence, region, attribute) given twice with a
different ``context`` or ``relation`` is a conflict and neither copy is kept (``attribute_conflict``);
a row without its region or attribute is skipped (``attribute_row_invalid``), as is one whose
``context`` is neither ``yes`` nor ``no`` (``attribute_context_invalid``, never read as either); a
``relation`` other than 0/1 is kept as None (``attribute_relation_invalid``); ``context`` and
``relation`` that disagree are both kept as read (``attribute_relation_context_differ``); a missing
sentence stays None, never the text "None" (``attribute_sentence_missing``); a ``row_id`` without a
sentence index gives a None index (``attribute_row_id_invalid``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cxrdata.errors import CxrdataError
from cxrdata.io.csvfiles import read_text_csv, require_columns
from cxrdata.sources.imagenome_layout import dicom_id_of
from cxrdata.sources.input_checks import unique_rows
from cxrdata.sources.regions import note
from cxrdata.stage import Record, RecordStage

GOLD_ATTRIBUTES = "gold_dataset/gold_attributes_relations_500pts_500studies1st.txt"
REQUIRED_COLUMNS = ("image_id", "row_id", "bbox", "categoryID", "label_name", "sentence")
FLAG_COLUMNS = ("context", "relation")  # at least one
OPTIONAL_COLUMNS = ("patient_id", "study_id", "section")
CONTEXTS = ("yes", "no")
RELATIONS = {"1": 1, "1.0": 1, "0": 0, "0.0": 0}
ROW_ID = re.compile(r"^\s*\d+\s*\|\s*(\d+)(?:\.0)?\s*$")
SOURCE = "imagenome-gold"


def check_attributes_file(path: Path) -> None:
    """Refuse, in one line, a missing or empty file or one without the columns the reader needs."""
    if not path.is_file():
        raise CxrdataError(f"Chest ImaGenome file {path} does not exist")
    found = require_columns(path, REQUIRED_COLUMNS, separator="\t")
    if not any(c in found for c in FLAG_COLUMNS):
        raise CxrdataError(f"{path.name}: missing column(s) context or relation (found: {', '.join(found)})")


def read_attribute_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """dicom_id (``image_id`` without ``.dcm``) -> its rows (known columns only, text or None), in file order."""
    frame = read_text_csv(path, separator="\t")
    columns = [c for c in (*REQUIRED_COLUMNS, *FLAG_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in frame.select(columns).iter_rows(named=True):
        rows.setdefault(dicom_id_of(row["image_id"]), []).append(row)
    return rows


@dataclass
class GoldAttributeStage(RecordStage):
    """``_attribute_rows`` -> ``sentence_regions``, joined to the record's gold boxes (after GoldBoxStage)."""

    name: ClassVar[str] = "imagenome-gold-attributes"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"regions", "_attribute_rows"})
    drops: ClassVar[frozenset[str]] = frozenset({"_attribute_rows"})
    gives: ClassVar[frozenset[str]] = frozenset({"sentence_regions"})

    def process(self, record: Record) -> Record:
        boxes = {r["label"]: r["box"] for r in record["regions"]}
        record["sentence_regions"] = sentence_regions(record.pop("_attribute_rows", []), boxes, record)
        return record


def sentence_regions(rows: list[dict[str, Any]], boxes: dict[str, list[float] | None], record: Record) -> list[Record]:
    """One entry per (sentence, region) of ``rows`` (see the module docstring); notes go on ``record``."""
    entries: dict[tuple[Any, ...], Record] = {}
    flags: dict[tuple[Any, ...], dict[tuple[str, str], tuple[str, int | None]]] = {}
    conflicts: set[tuple[Any, ...]] = set()
    for row in unique_rows(rows, record, "attribute_row_duplicate"):
        parsed = _attribute(row, record)
        if parsed is None:
            continue
        region, attribute, flag = parsed
        if region not in entries:
            entries[region] = _entry(region, boxes, record)
        seen = flags.setdefault(region, {})
        if attribute in seen and seen[attribute] != flag:
            conflicts.add((*region, *attribute))
        elif attribute in seen:
            note(record, "attribute_row_duplicate")  # the same attribute again, spelled differently
        seen.setdefault(attribute, flag)
    for region, entry in entries.items():
        for (category, label), (context, relation) in flags[region].items():
            if (*region, category, label) in conflicts:
                note(record, "attribute_conflict")
                continue
            entry["attributes"].append(f"{category}|{context}|{label}")
            entry["relations"].append(relation)
    return list(entries.values())


Parsed = tuple[tuple[Any, ...], tuple[str, str], tuple[str, int | None]]  # region key, attribute key, flags


def _attribute(row: dict[str, Any], record: Record) -> Parsed | None:
    """((row_id, bbox, sentence, section), (category, label), (context, relation)), or None (noted)."""
    bbox, category, label = (_text(row.get(k)) for k in ("bbox", "categoryID", "label_name"))
    if not (bbox and category and label):
        note(record, "attribute_row_invalid")
        return None
    relation_text = _text(row.get("relation"))
    relation = RELATIONS.get(relation_text) if relation_text else None
    if relation_text and relation is None:
        note(record, "attribute_relation_invalid")
    context = _text(row.get("context"))
    if not context and relation is not None and "context" not in row:
        context = CONTEXTS[1 - relation]  # only ``relation`` in the file: 1 is "yes", 0 is "no"
    if context not in CONTEXTS:
        note(record, "attribute_context_invalid")
        return None
    if relation is not None and relation != (context == "yes"):
        note(record, "attribute_relation_context_differ")
    sentence = row.get("sentence")
    text = " ".join(str(sentence).split()) if isinstance(sentence, str) and sentence.strip() else None
    if text is None:
        note(record, "attribute_sentence_missing")
    region = (_text(row.get("row_id")), bbox, text, _text(row.get("section")) or None)
    return region, (category, label), (context, relation)


def _entry(region: tuple[Any, ...], boxes: dict[str, list[float] | None], record: Record) -> Record:
    row_id, bbox, text, section = region
    match = ROW_ID.match(row_id)
    if not match:
        note(record, "attribute_row_id_invalid")
    index = int(match.group(1)) if match else None
    return {"box": boxes.get(bbox), "phrase": text, "label": bbox, "source": SOURCE, "sentence": index,
            "section": section, "row_id": row_id or None, "attributes": [], "relations": []}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
