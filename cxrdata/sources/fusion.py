"""Fusing several readers' boxes of one image into one view (VinDr-CXR's 3 readers, PadChest-GR's 2).

A fused view is added beside the raw boxes and never replaces them. Boxes are grouped per label:
a box joins the first cluster whose current fused box overlaps it with IoU > ``iou``.

* ``union``: a cluster becomes the box enclosing all its members.
* ``wbf``: weighted boxes fusion (Solovyev et al., 2021) with every box scored 1.0: the fused box
  is the score-weighted mean of its members, and its score is the mean member score times
  ``min(readers in cluster, n_readers) / n_readers`` (agreement). ``iou=0.1`` is RadVLM's VinDr setting.

Canonical boxes in, canonical boxes out; input order decides ties, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cxrdata.boxes import Box

FUSE_MODES = ("none", "union", "wbf")


@dataclass(frozen=True)
class ReaderBox:
    """One reader's box with its label and score."""

    box: Box
    label: str
    reader: str
    score: float = 1.0


@dataclass(frozen=True)
class FusedBox:
    box: Box
    label: str
    readers: tuple[str, ...]  # distinct readers whose boxes were fused, in input order
    score: float


@dataclass
class _Cluster:
    label: str
    members: list[ReaderBox] = field(default_factory=list)
    box: Box = (0.0, 0.0, 0.0, 0.0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes (0 when either has no area)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _weighted(members: list[ReaderBox]) -> Box:
    total = sum(m.score for m in members)
    return tuple(sum(m.box[k] * m.score for m in members) / total for k in range(4))  # type: ignore[return-value]


def _enclosing(members: list[ReaderBox]) -> Box:
    return (min(m.box[0] for m in members), min(m.box[1] for m in members),
            max(m.box[2] for m in members), max(m.box[3] for m in members))


def fuse(boxes: Sequence[ReaderBox], mode: str = "wbf", iou_threshold: float = 0.1,
         n_readers: int | None = None) -> list[FusedBox]:
    """Fuse ``boxes`` by ``mode`` (``union`` or ``wbf``; ``none`` gives an empty list)."""
    if mode not in FUSE_MODES:
        raise ValueError(f"fuse mode must be one of {FUSE_MODES}, not {mode!r}")
    if mode == "none" or not boxes:
        return []
    readers_total = n_readers or len({b.reader for b in boxes})
    merge = _weighted if mode == "wbf" else _enclosing
    clusters: list[_Cluster] = []
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].score)  # stable: input order breaks ties
    for i in order:
        item = boxes[i]
        target = next((c for c in clusters if c.label == item.label and iou(c.box, item.box) > iou_threshold), None)
        if target is None:
            target = _Cluster(item.label)
            clusters.append(target)
        target.members.append(item)
        target.box = merge(target.members)
    fused = []
    for c in clusters:
        readers = tuple(dict.fromkeys(m.reader for m in c.members))
        score = sum(m.score for m in c.members) / len(c.members)
        if mode == "wbf":
            score *= min(len(readers), readers_total) / readers_total
        fused.append(FusedBox(tuple(float(v) for v in c.box), c.label, readers, float(score)))  # type: ignore[arg-type]
    return fused
