"""``"{location} {pathology}"`` prompts (seed 003, sections 3.2-3.3 and appendix B).

Wording, following seed 003: the pathology is written in lower case ("left lower atelectasis",
"bilateral pleural effusion", "right pneumothorax" as in its discussion); location terms are the
vocabulary's own strings ("bibasilar", "cardiomegaly", "pulmonary"). Several locations of one finding
are bound with the ``<and>`` token (appendix B: "we bind the retrieved locations using the <and>
token"); the seed does not show the spacing, we write it as a separate word: ``"left lower <and> right
upper pneumonia"``. Locations are written in vocabulary order, so a prompt is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

from cxrdata.anatomy.location_rules import order_locations
from cxrdata.vocabulary import pathologies

AND_TOKEN = "<and>"


def pathology_words(pathology: str) -> str:
    """The pathology as written in a prompt: ``"Pleural Effusion" -> "pleural effusion"``."""
    if pathology not in pathologies():
        raise ValueError(f"unknown pathology {pathology!r}; expected one of {pathologies()}")
    return pathology.lower()


def build_prompt(locations: Iterable[str], pathology: str, *, repeat_pathology: bool = False) -> str:
    """``"{location} {pathology}"``, locations joined with ``" <and> "`` in vocabulary order.

    With ``repeat_pathology`` each location gets its own pathology:
    ``"left lower pneumonia <and> right upper pneumonia"``.
    """
    ordered, words = order_locations(locations), pathology_words(pathology)
    if not ordered:
        raise ValueError("a prompt needs at least one location")
    if repeat_pathology:
        return f" {AND_TOKEN} ".join(f"{location} {words}" for location in ordered)
    return f"{f' {AND_TOKEN} '.join(ordered)} {words}"
