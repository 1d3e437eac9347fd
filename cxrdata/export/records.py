"""What one output row of a build offers a chat export (:class:`RecordFacts`), per schema family.

The family is the row's schema (the shards' ``cxrdata`` metadata) without a ``-lofi-regions`` suffix. Each
family names the columns it reads; a config that lacks one is refused up front (one line), never exported
half. Grounding phrases are a row's regions with a box and a non-empty phrase, grouped by phrase (whitespace
collapsed, order of first appearance), every box of the phrase together; a region without a box or with an
empty phrase is counted, not exported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cxrdata.boxes import Box
from cxrdata.export.findings import Findings, imagenome_findings, mimic_findings, named_findings, vindr_findings

Row = Mapping[str, Any]
SIZE_COLUMNS = ("id", "split", "image", "image_width", "image_height", "original_width", "original_height")


@dataclass
class RecordFacts:
    """A row, as the tasks see it."""

    record_id: str
    split: str
    groups: list[tuple[str, list[Box]]] = field(default_factory=list)  # grounding: (phrase, its boxes)
    findings: Findings = field(default_factory=Findings)  # vqa and negative grounding
    locations: list[tuple[str, list[str]]] = field(default_factory=list)  # vqa-location: (finding, terms)
    report: str | None = None
    notes: Counter = field(default_factory=Counter)  # regions left out, by reason


def _collapse(text: Any) -> str:
    return " ".join(str(text or "").split())


def group_regions(regions: list[Row], notes: Counter) -> list[tuple[str, list[Box]]]:
    groups: dict[str, list[Box]] = {}
    for region in regions:
        phrase, box = _collapse(region.get("phrase")), region.get("box")
        if box is None:
            notes["region_without_box"] += 1
        elif not phrase:
            notes["region_phrase_empty"] += 1
        else:
            groups.setdefault(phrase, []).append(tuple(float(v) for v in box))  # type: ignore[arg-type]
    return list(groups.items())


def _phrase_boxes(row: Row, text_column: str, notes: Counter) -> list[tuple[str, list[Box]]]:
    return group_regions([{"phrase": row.get(text_column), "box": b} for b in row.get("boxes") or []] or
                         [{"phrase": row.get(text_column), "box": None}], notes)


def _distinct(items: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(i) for i in items if i))


def padchest_report(row: Row) -> str | None:
    """The English report: every sentence (negative ones too), in order."""
    sentences = (_collapse(s.get("sentence_en")) for s in row.get("sentences") or [])
    return " ".join(s for s in sentences if s) or None


def mimic_report(row: Row) -> str | None:
    """``Findings: ... Impression: ...`` (the sections present), else the last paragraph."""
    sections = (("Findings", _collapse(row.get("findings"))), ("Impression", _collapse(row.get("impression"))))
    parts = [f"{name}: {text}" for name, text in sections if text]
    if parts:
        return "\n".join(parts)
    return _collapse(row.get("last_paragraph")) or None


def _located(facts: RecordFacts, row: Row) -> list[tuple[str, list[str]]]:
    """The row's one finding with its distinct location terms (none without a finding or a location)."""
    terms = _distinct(row.get("locations") or [])
    return [(facts.findings.present[0], terms)] if facts.findings.present and terms else []


def _vindr(row: Row, facts: RecordFacts) -> None:
    facts.groups = group_regions(list(row.get("regions") or []), facts.notes)
    facts.findings = vindr_findings(row)


def _imagenome(row: Row, facts: RecordFacts) -> None:
    facts.groups = group_regions(list(row.get("regions") or []), facts.notes)
    facts.findings = imagenome_findings(row)


def _padchest(row: Row, facts: RecordFacts) -> None:
    facts.groups = group_regions(list(row.get("regions") or []), facts.notes)
    labels = [label for s in row.get("sentences") or [] if s.get("abnormal") for label in s.get("labels") or []]
    facts.findings = named_findings(*labels)
    facts.report = padchest_report(row)


def _ms_cxr(row: Row, facts: RecordFacts) -> None:
    facts.groups = _phrase_boxes(row, "phrase", facts.notes)
    facts.findings = named_findings(row.get("category"))


def _ms_cxr_loc(row: Row, facts: RecordFacts) -> None:
    facts.groups = _phrase_boxes(row, "phrase", facts.notes)
    facts.findings = named_findings(row.get("pathology"))
    facts.locations = _located(facts, row)


def _vindr_prompts(row: Row, facts: RecordFacts) -> None:
    facts.groups = _phrase_boxes(row, "prompt", facts.notes)
    facts.findings = named_findings(row.get("class_name"))
    facts.locations = _located(facts, row)


def _ldm_prompts(row: Row, facts: RecordFacts) -> None:
    facts.findings = named_findings(row.get("pathology"))
    facts.locations = _located(facts, row)


def _mimic(row: Row, facts: RecordFacts) -> None:
    facts.findings = mimic_findings(row)
    facts.report = mimic_report(row)


@dataclass(frozen=True)
class Family:
    """How rows of one schema family become facts, and which tasks they can serve."""

    columns: tuple[str, ...]  # besides SIZE_COLUMNS
    tasks: frozenset[str]
    read: Callable[[Row, RecordFacts], None]


_REGIONS = frozenset({"grounding", "dense-caption", "vqa"})
FAMILIES: dict[str, Family] = {
    "vindr": Family(("regions", "rejected_regions", "image_labels", "no_finding_readers"), _REGIONS, _vindr),
    "imagenome-silver": Family(("regions",), _REGIONS, _imagenome),
    "imagenome-gold": Family(("regions", "sentence_regions"), _REGIONS, _imagenome),
    "padchest-gr": Family(("regions", "sentences"), _REGIONS | {"report"}, _padchest),
    "ms-cxr": Family(("phrase", "boxes", "category"), _REGIONS, _ms_cxr),
    "ms-cxr-loc": Family(("phrase", "boxes", "pathology", "locations"), _REGIONS, _ms_cxr_loc),
    "vindr-prompts": Family(("prompt", "boxes", "class_name", "locations"), _REGIONS, _vindr_prompts),
    "ldm-prompts": Family(("pathology", "locations"), frozenset({"vqa"}), _ldm_prompts),
    "mimic": Family(("chexpert", "findings", "impression", "last_paragraph"), frozenset({"report", "vqa"}), _mimic),
}


def family_of(schema: str) -> str:
    return schema.removesuffix("-lofi-regions")


def record_facts(family: str, row: Row) -> RecordFacts:
    facts = RecordFacts(str(row["id"]), str(row.get("split") or "unknown"))
    FAMILIES[family].read(row, facts)
    return facts
