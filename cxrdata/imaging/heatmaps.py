"""A model heatmap on the original image's grid (steps 1-2 of the grounding protocol, cxrdata.evaluate.grounding).

A square heatmap of a centre-cropped input is resized to the ``min(W, H)`` square and NaN-padded, centred,
to ``W x H`` (the padding is no part of the prediction), then min-max normalised over its non-NaN pixels.
The evaluation and the preview's heatmap layer use these same two functions.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

Interpolation = Literal["nearest", "bilinear"]
_CV2_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR}


def to_image_grid(heatmap: ArrayLike, width: int, height: int,
                  interpolation: Interpolation = "nearest") -> NDArray[np.float32]:
    """Resize a model heatmap to ``min(W, H)`` square and NaN-pad it, centred, to ``height x width``."""
    side = min(width, height)
    small = cv2.resize(np.asarray(heatmap, dtype=np.float32), (side, side),
                       interpolation=_CV2_INTERPOLATION[interpolation])
    out = np.full((height, width), np.nan, dtype=np.float32)
    left, top = (width - side) // 2, (height - side) // 2
    out[top:top + side, left:left + side] = small
    return out


def minmax_normalise(heatmap: ArrayLike) -> NDArray[np.float32]:
    """Scale the non-NaN pixels to [0, 1]; a constant map becomes all zeros. NaN stays NaN."""
    h = np.array(heatmap, dtype=np.float32)
    lo, hi = np.nanmin(h), np.nanmax(h)
    h -= lo
    if hi > lo:
        h /= hi - lo
    return h
