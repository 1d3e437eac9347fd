"""Entity value types shared by the extractors and the location mapper (RadGraph v1 label spelling)."""

from __future__ import annotations

from dataclasses import dataclass

# Normalised entity labels. RadGraph-XL's "Anatomy::definitely present" is ANAT-DP.
ANAT_DP = "ANAT-DP"


@dataclass(frozen=True)
class Entity:
    """One entity in a sentence: its words, normalised label and inclusive token span."""

    text: str
    label: str
    start: int
    end: int
