"""Region-level text pairs for LoFi (SPEC "Targets for LoFi"): grounding and dense captioning.

A record's regions (``{"box": canonical box, "phrase": str}``) are grouped by phrase (whitespace
collapsed, order of first appearance). Per phrase:

* grounding      ``Detect all instances of "{phrase}".``  ->  the box text of all its boxes
* dense caption  ``Describe the regions: {box text}``      ->  the phrase

The box text format is a parameter (:mod:`cxrdata.targets.box_text`). Training picks one pair per
record and epoch: the phrase uniformly, the task with probability ``p_grounding`` (0.5), from a
Generator seeded by BLAKE2b of ``(seed, record_id, epoch)`` — stable across processes and machines,
unlike Python's salted ``hash``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cxrdata.boxes import Box, check_box
from cxrdata.errors import Rejected
from cxrdata.targets.box_text import DEFAULT_FORMAT, BoxFormat, boxes_to_text

GROUNDING_PROMPT = 'Detect all instances of "{phrase}".'
DENSE_CAPTION_PROMPT = "Describe the regions: {boxes}"

Task = Literal["grounding", "dense_caption"]


@dataclass(frozen=True)
class RegionPair:
    """One prompt -> target training pair."""

    task: Task
    prompt: str
    target: str
    phrase: str


def group_by_phrase(regions: Iterable[Mapping]) -> list[tuple[str, list[Box]]]:
    """``(phrase, boxes)`` per distinct phrase, in order of first appearance.

    Raises :class:`Rejected` (``region_phrase_empty`` or a ``check_box`` reason) for a bad region;
    boxes slightly outside the image are clipped.
    """
    groups: dict[str, list[Box]] = {}
    for region in regions:
        phrase = " ".join(str(region.get("phrase") or "").split())
        if not phrase:
            raise Rejected("region_phrase_empty", f"region {dict(region)!r} has no phrase")
        raw = region.get("box")
        if raw is None or isinstance(raw, str | bytes):
            raise Rejected("box_malformed", f"region {phrase!r} has no box")
        box, _ = check_box(raw)
        groups.setdefault(phrase, []).append(box)
    return list(groups.items())


def grounding_pair(phrase: str, boxes: list[Box], width: int, height: int,
                   fmt: BoxFormat = DEFAULT_FORMAT) -> RegionPair:
    """Phrase -> all its boxes."""
    return RegionPair("grounding", GROUNDING_PROMPT.format(phrase=phrase),
                      boxes_to_text(boxes, width, height, fmt), phrase)


def dense_caption_pair(phrase: str, boxes: list[Box], width: int, height: int,
                       fmt: BoxFormat = DEFAULT_FORMAT) -> RegionPair:
    """Boxes -> their phrase."""
    prompt = DENSE_CAPTION_PROMPT.format(boxes=boxes_to_text(boxes, width, height, fmt))
    return RegionPair("dense_caption", prompt, phrase, phrase)


def region_pairs(regions: Iterable[Mapping], width: int, height: int,
                 fmt: BoxFormat = DEFAULT_FORMAT) -> list[RegionPair]:
    """Every pair of a record: for each phrase, its grounding pair then its dense-caption pair."""
    pairs = []
    for phrase, boxes in group_by_phrase(regions):
        pairs.append(grounding_pair(phrase, boxes, width, height, fmt))
        pairs.append(dense_caption_pair(phrase, boxes, width, height, fmt))
    return pairs


def record_rng(record_id: str, seed: int = 0, epoch: int = 0) -> np.random.Generator:
    """A Generator that depends only on ``(seed, record_id, epoch)``."""
    digest = hashlib.blake2b(f"{seed}\x1f{record_id}\x1f{epoch}".encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def sample_region_pair(record_id: str, regions: Iterable[Mapping], width: int, height: int,
                       fmt: BoxFormat = DEFAULT_FORMAT, seed: int = 0, epoch: int = 0,
                       p_grounding: float = 0.5) -> RegionPair | None:
    """The one pair a record contributes in ``epoch``; None when it has no regions."""
    groups = group_by_phrase(regions)
    if not groups:
        return None
    rng = record_rng(record_id, seed, epoch)
    phrase, boxes = groups[int(rng.integers(len(groups)))]
    if rng.random() < p_grounding:
        return grounding_pair(phrase, boxes, width, height, fmt)
    return dense_caption_pair(phrase, boxes, width, height, fmt)
