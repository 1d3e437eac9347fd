"""The extractor interface shared by the RadGraph-XL and the rule-based backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cxrdata.text.entities import ANAT_DP, Entity

__all__ = ["ANAT_DP", "Entity", "Extractor"]


class Extractor(Protocol):
    """Turns sentences into entities. ``name`` and ``version`` key the result cache and are recorded
    on every output row, so a dataset always says which extractor produced it."""

    name: str
    version: str

    def extract(self, sentences: Sequence[str]) -> list[list[Entity]]:
        """One list of entities per input sentence, in input order (empty list when none)."""
        ...
