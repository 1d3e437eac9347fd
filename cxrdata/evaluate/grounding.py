"""Phrase-grounding metrics of seed 003 (section 4): CNR and mIoU of a heatmap against ground-truth boxes.

Protocol (seed 003, 4.4; padding as in hi-ml's ``convert_similarity_to_image_size`` for BioViL and in a
public copy of the LDM zero-shot evaluation script that seed 003 builds on):

1. A model's heatmap, square for a square (centre-cropped) input, is resized to ``s x s`` with
   ``s = min(W, H)`` of the original image (nearest neighbour by default), then padded to ``W x H``
   **centred**: ``floor(margin / 2)`` before and ``ceil(margin / 2)`` after along the long axis — where
   a centre crop took its pixels from. The padding is NaN: it is no part of the prediction.
2. The heatmap is min-max normalised to [0, 1] over its non-NaN pixels.
3. Ground truth: the union of the record's boxes as a pixel mask (a pixel is inside when its centre is).
4. CNR = (mu_in - mu_out) / sqrt(var_in + var_out) over the non-NaN pixels inside / outside the mask,
   signed (a heatmap brighter outside scores below zero), population variances.
5. mIoU = mean over t in {0.1, ..., 0.5} of IoU(heatmap >= t, mask). NaN pixels are never predicted;
   ground truth lying in the padding still counts in the union.

Where that script differs, we follow SPEC: it averages a CNR per box (the other boxes counting as
"outside") where we use the union, and thresholds with ``>`` where we use ``>=`` (the same for any
heatmap whose values do not sit exactly on a threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cxrdata.anatomy.gaussian import ORACLE_SIGMA_DIVISOR, Combine, render_boxes
from cxrdata.imaging.heatmaps import Interpolation, minmax_normalise, to_image_grid

THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)



@dataclass(frozen=True)
class GroundingScore:
    """CNR and mIoU (a fraction in [0, 1]) of one heatmap."""

    cnr: float
    miou: float


def prepare_heatmap(heatmap: ArrayLike, width: int, height: int,
                    interpolation: Interpolation = "nearest") -> NDArray[np.float32]:
    """Steps 1-2 of the protocol: to the original image grid, then min-max normalised."""
    return minmax_normalise(to_image_grid(heatmap, width, height, interpolation))


def box_mask(boxes: ArrayLike, width: int, height: int) -> NDArray[np.bool_]:
    """Union of canonical boxes as an ``height x width`` mask; a pixel is in when its centre is."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        c0, c1 = max(math.ceil(x0 * width - 0.5), 0), min(math.floor(x1 * width - 0.5), width - 1)
        r0, r1 = max(math.ceil(y0 * height - 0.5), 0), min(math.floor(y1 * height - 0.5), height - 1)
        if c1 >= c0 and r1 >= r0:
            mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


def cnr(heatmap: ArrayLike, mask: ArrayLike) -> float:
    """Signed contrast-to-noise ratio of ``heatmap`` inside vs outside ``mask`` (NaN pixels ignored).

    NaN when either side has no valid pixel; ±inf when both sides are constant but differ (a perfect
    binary map), 0 when they are constant and equal.
    """
    h = np.asarray(heatmap, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    nan = np.isnan(h)
    n_valid = h.size
    if nan.any():
        rows, cols = np.flatnonzero(~nan.all(axis=1)), np.flatnonzero(~nan.all(axis=0))
        if rows.size == 0:
            return math.nan
        window = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        if not nan[window].any():  # NaN only around a rectangle (the protocol's padding): crop, no copy
            h, m = h[window], m[window]
            n_valid = h.size
        else:
            m = m & ~nan
            h = np.where(nan, np.float32(0), h)
            n_valid -= int(np.count_nonzero(nan))
    inside = h[m]
    n_in = inside.size
    n_out = n_valid - n_in
    if n_in == 0 or n_out == 0:
        return math.nan
    # Sums in float64 without BLAS (a threaded dot on a busy machine is slower than these passes).
    s_in, ss_in = inside.sum(dtype=np.float64), np.square(inside).sum(dtype=np.float64)
    s_all, ss_all = h.sum(dtype=np.float64), np.square(h).sum(dtype=np.float64)
    mu_in, mu_out = s_in / n_in, (s_all - s_in) / n_out
    var_in = max(ss_in / n_in - mu_in**2, 0.0)
    var_out = max((ss_all - ss_in) / n_out - mu_out**2, 0.0)
    diff, spread = mu_in - mu_out, math.sqrt(var_in + var_out)
    if spread == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / spread)


def iou_at_thresholds(heatmap: ArrayLike, mask: ArrayLike,
                      thresholds: tuple[float, ...] = THRESHOLDS) -> NDArray[np.float64]:
    """IoU(heatmap >= t, mask) for every threshold t; NaN pixels are never predicted."""
    h = np.asarray(heatmap, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    inside = h[m]
    area = inside.size
    out = np.empty(len(thresholds))
    for i, t in enumerate(thresholds):
        t32 = np.float32(t)
        inter = np.count_nonzero(inside >= t32)
        union = area + np.count_nonzero(h >= t32) - inter
        out[i] = inter / union if union else math.nan
    return out


def miou(heatmap: ArrayLike, mask: ArrayLike, thresholds: tuple[float, ...] = THRESHOLDS) -> float:
    """Mean IoU over ``thresholds`` (default 0.1, 0.2, ..., 0.5)."""
    return float(np.mean(iou_at_thresholds(heatmap, mask, thresholds)))


def score(heatmap: ArrayLike, boxes: ArrayLike, width: int, height: int,
          thresholds: tuple[float, ...] = THRESHOLDS) -> GroundingScore:
    """CNR and mIoU of a heatmap already on the ``width x height`` image grid (min-max normalised here)."""
    h = minmax_normalise(heatmap)
    mask = box_mask(boxes, width, height)
    return GroundingScore(cnr(h, mask), miou(h, mask, thresholds))


def evaluate_heatmap(heatmap: ArrayLike, boxes: ArrayLike, width: int, height: int,
                     interpolation: Interpolation = "nearest",
                     thresholds: tuple[float, ...] = THRESHOLDS) -> GroundingScore:
    """The whole protocol for a model's (square) heatmap and a record's canonical boxes."""
    return score(to_image_grid(heatmap, width, height, interpolation), boxes, width, height, thresholds)


def oracle_heatmap(boxes: ArrayLike, width: int, height: int, divisor: float = ORACLE_SIGMA_DIVISOR,
                   combine: Combine = "max") -> NDArray[np.float32]:
    """The Oracle: a Gaussian per ground-truth box (sigma = range / 3) drawn on the full image grid.

    Several boxes combine by pixelwise maximum by default, so each box keeps its own iso-contours;
    ``combine="sum"`` adds them (then peak-normalises). The paper does not say which it used.
    """
    return render_boxes(boxes, height, width, divisor, combine)
