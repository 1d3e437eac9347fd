"""Box fusion: union and weighted boxes fusion of several readers' boxes."""

from __future__ import annotations

import pytest

from cxrdata.sources.fusion import ReaderBox, fuse, iou


def test_iou() -> None:
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert iou((0, 0, 0.5, 0.5), (0.25, 0.25, 0.75, 0.75)) == pytest.approx(0.0625 / 0.4375)


def _three_readers() -> list[ReaderBox]:
    return [
        ReaderBox((0.10, 0.10, 0.30, 0.30), "Nodule/Mass", "R1"),
        ReaderBox((0.12, 0.12, 0.32, 0.34), "Nodule/Mass", "R2"),
        ReaderBox((0.60, 0.60, 0.70, 0.70), "Nodule/Mass", "R3"),  # elsewhere: its own cluster
        ReaderBox((0.11, 0.11, 0.31, 0.31), "Pleural effusion", "R3"),  # another label never merges
    ]


def test_wbf_averages_and_scores_agreement() -> None:
    fused = fuse(_three_readers(), "wbf", iou_threshold=0.1, n_readers=3)
    assert [(f.label, f.readers) for f in fused] == [
        ("Nodule/Mass", ("R1", "R2")), ("Nodule/Mass", ("R3",)), ("Pleural effusion", ("R3",))
    ]
    assert fused[0].box == pytest.approx((0.11, 0.11, 0.31, 0.32))
    assert fused[0].score == pytest.approx(2 / 3) and fused[1].score == pytest.approx(1 / 3)


def test_union_encloses() -> None:
    fused = fuse(_three_readers(), "union", iou_threshold=0.1)
    assert fused[0].box == pytest.approx((0.10, 0.10, 0.32, 0.34)) and fused[0].score == 1.0


def test_threshold_and_none() -> None:
    boxes = _three_readers()[:2]
    assert len(fuse(boxes, "wbf", iou_threshold=0.9)) == 2
    assert fuse(boxes, "none") == [] and fuse([], "wbf") == []
    with pytest.raises(ValueError, match="fuse mode"):
        fuse(boxes, "nms")
