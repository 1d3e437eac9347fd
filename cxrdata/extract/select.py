"""Choosing the entity extractor: ``auto`` is RadGraph-XL when its weights are present, else the rules.

The choice is made once, in the main process, without loading a model (RadGraph's files are only checked
and fingerprinted), so that its ``name@version`` can enter the build's config hash; workers load the model
in their stage's ``setup()``. Every choice is logged with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cxrdata.errors import CxrdataError
from cxrdata.extract.base import Extractor
from cxrdata.extract.rules import RuleExtractor

logger = logging.getLogger(__name__)

EXTRACTOR_CHOICES = ("auto", "radgraph", "rules")


@dataclass(frozen=True)
class ExtractorSelection:
    """The extractor a build uses, what was asked for and why this one."""

    extractor: Extractor
    requested: str
    reason: str

    @property
    def label(self) -> str:
        return extractor_label(self.extractor)


def extractor_label(extractor: Extractor) -> str:
    """``name@version``: what every output row records in its ``extractor`` column."""
    return f"{extractor.name}@{extractor.version}"


def _radgraph(radgraph_cache: Path | None, device: str) -> Extractor:
    from cxrdata.extract.radgraph import RadGraphExtractor

    return RadGraphExtractor(radgraph_cache, device=device)


def _radgraph_missing(radgraph_cache: Path | None) -> str | None:
    """Why RadGraph-XL cannot be used (package or weights missing), or None when it can."""
    from cxrdata.extract.radgraph import check_model_dir, default_cache_dir, radgraph_version

    try:
        radgraph_version()
    except CxrdataError:
        return "the radgraph package is not installed"
    cache = Path(radgraph_cache) if radgraph_cache is not None else default_cache_dir()
    try:
        check_model_dir(cache)
    except CxrdataError:
        return f"no RadGraph-XL weights in {cache}"
    return None


def select_extractor(name: str, radgraph_cache: Path | None = None, device: str = "auto") -> ExtractorSelection:
    """Resolve ``auto`` / ``radgraph`` / ``rules``. ``radgraph`` without its files raises a CxrdataError
    naming them (one line); ``auto`` falls back to the rules when the package or the weights are missing."""
    if name not in EXTRACTOR_CHOICES:
        raise CxrdataError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTOR_CHOICES)}")
    if name == "rules":
        selection = ExtractorSelection(RuleExtractor(), name, "asked for")
    elif name == "radgraph":
        selection = ExtractorSelection(_radgraph(radgraph_cache, device), name, "asked for")
    elif (missing := _radgraph_missing(radgraph_cache)) is not None:
        selection = ExtractorSelection(RuleExtractor(), name, missing)
    else:
        selection = ExtractorSelection(_radgraph(radgraph_cache, device), name, "RadGraph-XL weights found")
    logger.info("extractor %s (%s: %s)", selection.label, selection.requested, selection.reason)
    return selection


def make_extractor(name: str, radgraph_cache: Path | None = None, device: str = "auto") -> Extractor:
    """The extractor for ``name`` (see :func:`select_extractor`); a RadGraph model is not loaded yet."""
    return select_extractor(name, radgraph_cache, device).extractor


def load_extractor(extractor: Extractor) -> None:
    """Load the extractor's model if it has one (RadGraph); the rules need nothing."""
    load = getattr(extractor, "load", None)
    if callable(load):
        load()


def uses_gpu(extractor: Extractor) -> bool:
    """Whether the extractor will run on a GPU (a RadGraph model on ``cuda``, or ``auto`` with one present)."""
    device = getattr(extractor, "device", None)
    if device is None or device == "cpu":
        return False
    if device == "auto":
        try:
            import torch
        except ImportError:
            return False
        return bool(torch.cuda.is_available())
    return str(device).startswith("cuda")
