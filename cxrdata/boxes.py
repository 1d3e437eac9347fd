"""The one canonical box form and the conversions at the edges.

Canonical: ``(x_min, y_min, x_max, y_max)`` as floats normalised to [0, 1] of the **original**
image, always stored beside that image's pixel size. Every other form (xywh pixels, xyxy pixels,
pixels of a resized image, a letterboxed square such as Chest ImaGenome's 224 grid, quantised
tokens) is converted here and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cxrdata.errors import Rejected

Box = tuple[float, float, float, float]

# A box may overshoot the image by this fraction of its side before it is rejected; smaller
# overshoots are clipped (and counted by the caller).
OUT_OF_BOUNDS_TOLERANCE = 0.02


def from_xyxy_pixels(x_min: float, y_min: float, x_max: float, y_max: float, width: int, height: int) -> Box:
    """Absolute pixel corners on a ``width`` x ``height`` image -> canonical."""
    return (x_min / width, y_min / height, x_max / width, y_max / height)


def from_xywh_pixels(x: float, y: float, w: float, h: float, width: int, height: int) -> Box:
    """COCO-style top-left corner + size in pixels (MS-CXR) -> canonical."""
    return from_xyxy_pixels(x, y, x + w, y + h, width, height)


def to_xyxy_pixels(box: Sequence[float], width: int, height: int) -> Box:
    """Canonical -> pixel corners on an image of the given size (original or resized)."""
    x0, y0, x1, y1 = box
    return (x0 * width, y0 * height, x1 * width, y1 * height)


def to_xywh_pixels(box: Sequence[float], width: int, height: int) -> Box:
    """Canonical -> COCO-style pixels on an image of the given size."""
    x0, y0, x1, y1 = to_xyxy_pixels(box, width, height)
    return (x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class Letterbox:
    """A ``width`` x ``height`` image scaled by ``ratio`` and padded onto a ``side`` square.

    ``left``/``top`` are the padding before the image, in pixels of the square. Chest ImaGenome's
    224 grid is ``Letterbox.fit(w, h, 224)`` (its scaling CSV gives the same ratio/left/top), and
    LoFi's box integers live on ``Letterbox.fit(w, h, 1000)``.
    """

    width: int
    height: int
    side: float
    ratio: float
    left: float
    top: float

    @classmethod
    def fit(cls, width: int, height: int, side: float) -> Letterbox:
        """Scale the longest side to ``side`` and centre the image on the square."""
        ratio = side / max(width, height)
        return cls(width, height, side, ratio, (side - width * ratio) / 2, (side - height * ratio) / 2)

    def to_square(self, box: Sequence[float]) -> Box:
        """Canonical box -> coordinates on the letterboxed square."""
        x0, y0, x1, y1 = to_xyxy_pixels(box, self.width, self.height)
        r = self.ratio
        return (x0 * r + self.left, y0 * r + self.top, x1 * r + self.left, y1 * r + self.top)

    def from_square(self, coords: Sequence[float]) -> Box:
        """Coordinates on the letterboxed square -> canonical box."""
        x0, y0, x1, y1 = coords
        r = self.ratio
        return from_xyxy_pixels(
            (x0 - self.left) / r, (y0 - self.top) / r, (x1 - self.left) / r, (y1 - self.top) / r,
            self.width, self.height,
        )


def check_box(box: Sequence[float], tolerance: float = OUT_OF_BOUNDS_TOLERANCE) -> tuple[Box, bool]:
    """Validate a canonical box; return it clipped to [0, 1] and whether clipping happened.

    Raises :class:`Rejected` with reason ``box_nan``, ``box_empty`` (zero or negative area) or
    ``box_out_of_bounds`` (overshoot larger than ``tolerance``).
    """
    if len(box) != 4:
        raise Rejected("box_malformed", f"expected 4 coordinates, got {len(box)}")
    values = tuple(float(v) for v in box)
    if any(math.isnan(v) or math.isinf(v) for v in values):
        raise Rejected("box_nan", f"box {list(values)} has a NaN or infinite coordinate")
    x0, y0, x1, y1 = values
    if x1 <= x0 or y1 <= y0:
        raise Rejected("box_empty", f"box {list(values)} has zero or negative area")
    if min(values) < -tolerance or max(values) > 1 + tolerance:
        raise Rejected("box_out_of_bounds", f"box {list(values)} lies outside the image beyond {tolerance:.0%}")
    clipped = tuple(min(max(v, 0.0), 1.0) for v in values)
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise Rejected("box_out_of_bounds", f"box {list(values)} has no area inside the image")
    return clipped, clipped != values  # type: ignore[return-value]
