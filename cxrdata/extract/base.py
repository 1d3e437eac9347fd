"""The extractor interface shared by the RadGraph-XL and the rule-based backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Normalised entity labels (RadGraph v1 spelling). RadGraph-XL's "Anatomy::definitely present" is ANAT-DP.
ANAT_DP = "ANAT-DP"


@dataclass(frozen=True)
class Entity:
    """One entity in a sentence: its words, normalised label and inclusive token span."""

    text: str
    label: str
    start: int
    end: int


class Extractor(Protocol):
    """Turns sentences into entities. ``name`` and ``version`` key the result cache and are recorded
    on every output row, so a dataset always says which extractor produced it."""

    name: str
    version: str

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        """One list of entities per input sentence, in input order (empty list when none)."""
        ...
