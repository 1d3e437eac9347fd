"""8-bit PNG (NIH ChestX-ray14, docs/formats/chestxray14.md) to one grayscale channel, display-ready as stored.

A radiograph has one intensity per pixel, but some 8-bit PNGs of a release are saved with colour or alpha
channels (ChestX-ray14's readers take the first channel of any image that has more than two dimensions).
The file's colour type (from its IHDR chunk) is reported as a note (``png_source_rgba``,
``png_source_rgb``, ``png_source_gray_alpha``, ``png_source_palette``) and the pixels are made gray:

* colour channels that are all equal (a gray picture saved as RGB/RGBA) give that channel, exactly;
* colour channels that differ are weighted to luma by OpenCV (ITU-R BT.601), noted ``png_colour_to_luma``;
* an alpha channel is dropped (a radiograph has no transparency); one that is not fully opaque is
  noted ``png_alpha_ignored``, since the visible picture then depends on a background the file lacks.

The chunk structure is walked first (:func:`cxrdata.imaging.png16.png_layout`: a cut file is
``image_truncated``); a bit depth other than 8 is ``png_not_8bit`` (16-bit PNGs are PadChest-GR's kind).
"""

from __future__ import annotations

import lazy_loader
import numpy as np

from cxrdata.errors import Rejected
from cxrdata.imaging.png16 import png_layout, png_size
from cxrdata.imaging.raster import MAX_PIXELS, Raster, check_pixel_count, resize_longest_side

cv2 = lazy_loader.load("cv2")  # imported on first use: a build's driver plans and never decodes

COLOUR_TYPES = {0: "gray", 2: "rgb", 3: "palette", 4: "gray_alpha", 6: "rgba"}  # PNG IHDR colour types


def png_header(head: bytes) -> tuple[int, int, int, str]:
    """``(width, height, bit depth, colour type name)`` from the first 33 bytes (signature + IHDR)."""
    width, height, depth = png_size(head)
    return width, height, depth, COLOUR_TYPES.get(head[25], f"colour_type_{head[25]}")


def source_notes(colour: str) -> list[str]:
    """The note naming a PNG's colour type when it is not plain gray."""
    return [] if colour == "gray" else [f"png_source_{colour}"]


def check_8bit(depth: int) -> None:
    if depth != 8:
        raise Rejected("png_not_8bit", f"expected an 8-bit PNG, got {depth}-bit")


def to_gray(pixels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One uint8 channel from OpenCV's decode (gray, gray+alpha, BGR or BGRA), and the conversion notes."""
    if pixels.ndim == 2:
        return pixels, []
    notes = []
    channels = pixels.shape[2]
    if channels in (2, 4) and int(pixels[:, :, channels - 1].min()) < 255:
        notes.append("png_alpha_ignored")
    colour = pixels[:, :, :1] if channels <= 2 else pixels[:, :, :3]
    first = colour[:, :, 0]
    if colour.shape[2] == 1 or all(np.array_equal(first, colour[:, :, c]) for c in range(1, colour.shape[2])):
        return np.ascontiguousarray(first), notes
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_BGR2GRAY), [*notes, "png_colour_to_luma"]


def decode_png8(data: bytes, max_side: int = 0, max_pixels: int = MAX_PIXELS) -> tuple[Raster, list[str]]:
    """Decode an 8-bit PNG to one gray channel; ``max_side`` > 0 shrinks it (INTER_AREA).

    Returns the raster and the notes (source colour type, conversions). Raises :class:`Rejected`:
    ``image_truncated``, ``image_too_large``, ``png_not_8bit``, ``image_corrupt`` (does not decode)."""
    layout = png_layout(data)
    check_pixel_count(layout.width, layout.height, max_pixels)
    check_8bit(layout.bit_depth)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint8:
        raise Rejected("image_corrupt", "PNG does not decode to 8-bit pixels")
    gray, notes = to_gray(pixels)
    colour = png_header(data[:33])[3]
    return Raster(resize_longest_side(gray, max_side), layout.width, layout.height), [*source_notes(colour), *notes]
