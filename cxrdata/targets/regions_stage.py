"""LoFi region-level text targets written beside the regions (recipe ``lofi-regions``; SPEC "Targets for LoFi").

Every grounding and dense-caption pair of a record is written (:func:`cxrdata.targets.regions.region_pairs`),
in one box format; choosing one pair per record and epoch stays with the trainer. Boxes are canonical
(normalised to the original image), so the box text is computed on ``original_width`` x ``original_height``
(``qwen25vl``, which counts pixels of the image the model is fed, on ``image_width`` x ``image_height``):
the stage runs after the image stage. Boxes are rounded to float32 first, as the shards store them, so
the targets can be recomputed exactly from the written boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cxrdata.errors import Rejected
from cxrdata.stage import Record, RecordStage
from cxrdata.targets.box_text import DEFAULT_FORMAT, FORMATS, BoxFormat
from cxrdata.targets.regions import region_pairs


def record_regions(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The usable regions of a row: ``regions`` with a box and a non-empty phrase, or (MS-CXR) the row's
    ``phrase`` with each of its ``boxes``."""
    if "regions" in record:
        regions = record.get("regions") or []
    else:
        regions = [{"box": box, "phrase": record.get("phrase")} for box in record.get("boxes") or []]
    return [{"box": [float(v) for v in np.asarray(r["box"], dtype=np.float32)], "phrase": r["phrase"]}
            for r in regions
            if r.get("box") is not None and str(r.get("phrase") or "").strip()]


@dataclass
class RegionTargetsStage(RecordStage):
    """Adds ``box_format``, ``grounding`` and ``dense_captions`` (lists of ``{prompt, target}``)."""

    name: ClassVar[str] = "lofi-targets"
    version: ClassVar[str] = "1"
    needs: ClassVar[frozenset[str]] = frozenset({"original_width", "original_height"})
    needs_one_of: ClassVar[tuple[frozenset[str], ...]] = (frozenset({"regions"}), frozenset({"boxes", "phrase"}))
    gives: ClassVar[frozenset[str]] = frozenset({"box_format", "grounding", "dense_captions"})

    box_format: BoxFormat = DEFAULT_FORMAT

    def __post_init__(self) -> None:
        if self.box_format not in FORMATS:
            raise ValueError(f"unknown box format {self.box_format!r}; expected one of {', '.join(FORMATS)}")

    def process(self, record: Record) -> Record:
        regions = record_regions(record)
        if not regions:
            raise Rejected("no_region", "no region with both a box and a phrase")
        width, height = record.get("original_width"), record.get("original_height")
        if self.box_format == "qwen25vl":  # pixels of the image the model is fed: the stored one
            width, height = record.get("image_width"), record.get("image_height")
        if not width or not height:
            raise Rejected("no_image_size", "original_width/original_height missing (the image stage runs first)")
        pairs = region_pairs(regions, int(width), int(height), self.box_format)
        record["box_format"] = self.box_format
        record["grounding"] = [{"prompt": p.prompt, "target": p.target} for p in pairs if p.task == "grounding"]
        record["dense_captions"] = [{"prompt": p.prompt, "target": p.target} for p in pairs
                                    if p.task == "dense_caption"]
        return record
