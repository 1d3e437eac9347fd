"""The 8 pathologies and 27 location terms, read from ``vocabulary.yaml``."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml


@cache
def _data() -> dict:
    return yaml.safe_load(resources.files("cxrdata.anatomy").joinpath("vocabulary.yaml").read_text())


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
