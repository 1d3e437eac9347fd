"""Which findings a record says are present, and which it says are absent (``findings.yaml``).

Absence is claimed only where the dataset states it:

- VinDr-CXR: a local label is absent when the image has at least one reader, no reader boxed it (kept or
  rejected box), and no reader's image-level labels mark it. Every reader boxes each local finding they see
  or marks "No finding", so an unboxed label is one every reader left out.
- MIMIC-CXR: a CheXpert label of 0.0 (negated in the report); 1.0 is present; -1.0 and empty say nothing.
- Chest ImaGenome (silver ``regions``, gold ``sentence_regions``): a finding with a ``category|no|finding``
  attribute somewhere in the record and no ``category|yes|finding`` anywhere in it (the report negates it).
- MS-CXR, MS-CXR-loc, VinDr prompts, LDM prompts, PadChest-GR: their categories or labels are present; none
  is ever absent (MS-CXR annotates a few phrases per image, not every finding; PadChest-GR's negative
  sentences carry no labels; a prompt row holds one class).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cxrdata.yamlfiles import load_yaml

Row = Mapping[str, Any]


@dataclass
class Findings:
    """Display names of the findings a record says are present / absent, each in a stable order."""

    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


@cache
def vocabularies() -> dict[str, Any]:
    return load_yaml(Path(str(resources.files("cxrdata.export") / "findings.yaml")).read_text())


def vindr_findings(row: Row) -> Findings:
    names: dict[str, str] = vocabularies()["vindr"]
    readers = {r["reader"] for r in row.get("image_labels") or []} | set(row.get("no_finding_readers") or [])
    readers |= {r.get("reader") for r in row.get("regions") or []}
    marked = {r.get("label") for r in [*(row.get("regions") or []), *(row.get("rejected_regions") or [])]}
    marked |= {label for r in row.get("image_labels") or [] for label in r.get("labels") or []}
    present = [spoken for label, spoken in names.items() if label in marked]
    absent = [spoken for label, spoken in names.items() if label not in marked] if readers - {None} else []
    return Findings(present, absent)


def mimic_findings(row: Row) -> Findings:
    names: dict[str, str] = vocabularies()["mimic"]
    labels = row.get("chexpert") or {}
    present = [spoken for label, spoken in names.items() if labels.get(label) == 1.0]
    absent = [spoken for label, spoken in names.items() if labels.get(label) == 0.0]
    return Findings(present, absent)


def imagenome_findings(row: Row) -> Findings:
    """From the attributes of ``regions`` (silver) and ``sentence_regions`` (gold)."""
    categories = set(vocabularies()["imagenome"]["categories"])
    said: dict[str, set[str]] = {}
    for region in [*(row.get("regions") or []), *(row.get("sentence_regions") or [])]:
        for attribute in region.get("attributes") or []:
            parts = str(attribute).split("|")
            if len(parts) == 3 and parts[0] in categories and parts[1] in ("yes", "no") and parts[2].strip():
                said.setdefault(parts[2].strip(), set()).add(parts[1])
    present = sorted(f for f, values in said.items() if "yes" in values)
    absent = sorted(f for f, values in said.items() if values == {"no"})
    return Findings(present, absent)


def named_findings(*names: Any) -> Findings:
    """Present only: the distinct non-empty names given (lower case), in order."""
    seen = dict.fromkeys(" ".join(str(n).split()).lower() for n in names if n and str(n).strip())
    return Findings(list(seen), [])
