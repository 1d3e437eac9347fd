"""16-bit grayscale PNG (PadChest-GR, FORMATS.md §5.1) to display-ready 8-bit.

The PNG is read at full depth (``IMREAD_UNCHANGED``: dividing by 255 or letting a decoder drop
to 8 bits throws the contrast away) and windowed to 8 bits by one of:

* ``"percentile"`` (default): the ``low``–``high`` percentiles (0.5–99.5) of the image map to
  0–255, clipping burned-in labels and collimator edges. Percentiles come from a strided
  subsample of about 250,000 pixels, which moves them by at most a grey level or two.
* ``"minmax"``: the image's own minimum → 0 and maximum → 255.

The window becomes a 65,536-entry uint8 table applied by one lookup per pixel. PadChest PNGs
are display-ready (air dark), so nothing is inverted.

Before decoding, the chunk structure is walked (:func:`png_layout`): a file cut short is
``image_truncated``; bytes after a whole IEND chunk are tolerated, as libpng tolerates them, and
reported so the caller can count them; a header claiming more than ``max_pixels`` is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import lazy_loader
import numpy as np

from cxrdata.errors import Rejected
from cxrdata.imaging.lut import apply_table, linear_table, table_index_values
from cxrdata.imaging.raster import MAX_PIXELS, Raster, check_pixel_count, resize_longest_side

cv2 = lazy_loader.load("cv2")  # imported on first use: a build's driver plans and never decodes

Window = Literal["percentile", "minmax"]
_SAMPLE_TARGET = 250_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TABLE_VALUES = table_index_values(np.dtype(np.uint16))


@dataclass(frozen=True)
class PngLayout:
    """What a PNG's chunk structure says: its size, bit depth, and bytes after the IEND chunk."""

    width: int
    height: int
    bit_depth: int
    trailing_bytes: int


def png_size(head: bytes) -> tuple[int, int, int]:
    """``(width, height, bit depth)`` from the first 33 bytes (signature + IHDR)."""
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise Rejected("image_corrupt", "not a PNG (bad signature or no IHDR)")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24]


def png_layout(data: bytes) -> PngLayout:
    """Walk the chunks from IHDR to IEND (lengths only; libpng checks the CRCs when it decodes)."""
    width, height, depth = png_size(data)
    at = len(_PNG_SIGNATURE)
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        at += 12 + length
        if kind == b"IEND":
            if at > len(data):
                break
            return PngLayout(width, height, depth, len(data) - at)
    raise Rejected("image_truncated", f"PNG ends before its IEND chunk ({len(data)} bytes)")


def decode_png16(
    source: bytes | str | os.PathLike[str],
    max_side: int = 0,
    window: Window = "percentile",
    low: float = 0.5,
    high: float = 99.5,
    expect_16bit: bool = True,
    max_pixels: int = MAX_PIXELS,
) -> Raster:
    """Decode a grayscale PNG to uint8 with ``window``; ``max_side`` > 0 shrinks it (INTER_AREA).

    Raises :class:`Rejected`: ``image_truncated`` (no whole IEND chunk), ``image_too_large``,
    ``image_corrupt`` (does not decode), ``png_not_16bit`` (8-bit PNG while ``expect_16bit``;
    otherwise it is windowed alike).
    """
    data = _read_bytes(source)
    layout = png_layout(data)
    check_pixel_count(layout.width, layout.height, max_pixels)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise Rejected("image_corrupt", "PNG does not decode")
    pixels = _grayscale(pixels)
    if pixels.dtype != np.uint16:
        if expect_16bit:
            raise Rejected("png_not_16bit", f"expected a 16-bit grayscale PNG, got {pixels.dtype}")
        pixels = pixels.astype(np.uint16)
    height, width = pixels.shape
    lo, hi = window_bounds(pixels, window, low, high)
    image = apply_table(pixels, linear_table(_TABLE_VALUES, lo, hi))
    return Raster(resize_longest_side(image, max_side), width, height)


def window_bounds(pixels: np.ndarray, window: Window, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """The stored values that map to 0 and 255 under ``window``."""
    if window == "minmax":
        lo, hi, _, _ = cv2.minMaxLoc(pixels)
        return float(lo), float(hi)
    if window == "percentile":
        step = max(1, int(np.sqrt(pixels.size / _SAMPLE_TARGET)))
        sample = pixels[::step, ::step]
        lo, hi = np.percentile(sample, [low, high])
        return float(lo), float(hi)
    raise ValueError(f"unknown window {window!r}: use 'percentile' or 'minmax'")


def _grayscale(pixels: np.ndarray) -> np.ndarray:
    """Drop alpha and colour: PadChest PNGs are gray, but be lenient about how they were saved."""
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 2:  # gray + alpha
        return np.ascontiguousarray(pixels[:, :, 0])
    code = cv2.COLOR_BGRA2GRAY if pixels.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(pixels, code)


def _read_bytes(source: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, bytearray | memoryview):
        return bytes(source)
    try:
        with open(source, "rb") as f:
            return f.read()
    except OSError as exc:
        raise Rejected("image_unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None
