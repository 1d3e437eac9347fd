"""The 8 pathologies and 27 location terms, read from ``vocabulary.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from cxrdata.yamlfiles import load_yaml


@cache
def _data() -> dict:
    return load_yaml(resources.files("cxrdata").joinpath("vocabulary.yaml").read_text())


def sides_and_zones() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sides and zones whose product gives the 24 side x zone terms."""
    return tuple(_data()["sides"]), tuple(_data()["zones"])


def pathologies() -> tuple[str, ...]:
    """The 8 pathologies, in the paper's order."""
    return tuple(_data()["pathologies"])


def location_term(side: str, zone: str) -> str:
    """The term for a side and zone: ``("left", "lower") -> "left lower"``, bilateral base -> bibasilar."""
    term = f"{side} {zone}".strip()
    return _data()["spelled"].get(term, term)


def locations() -> tuple[str, ...]:
    """The 27 location terms: 24 side x zone terms, then lingular, cardiomegaly, pulmonary."""
    data = _data()
    grid = [location_term(side, zone) for side in data["sides"] for zone in data["zones"]]
    return (*grid, *data["extra_locations"])


def positive_pathologies(labels: Mapping[str, Any]) -> list[str]:
    """The pathologies of the 8 whose label is positive (1.0, as a number or as CSV text), in vocabulary order.

    The one single-pathology rule of seed 003's curation: a study keeps when exactly one is positive."""
    positive = []
    for name in pathologies():
        value = labels.get(name)
        try:
            if value not in (None, "") and float(value) == 1.0:
                positive.append(name)
        except (TypeError, ValueError):
            continue
    return positive
