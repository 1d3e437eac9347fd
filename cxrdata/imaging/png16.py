"""16-bit grayscale PNG (PadChest-GR, FORMATS.md §5.1) to display-ready 8-bit.

The PNG is read at full depth (``IMREAD_UNCHANGED``: dividing by 255 or letting a decoder drop
to 8 bits throws the contrast away) and windowed to 8 bits by one of:

* ``"percentile"`` (default): the ``low``–``high`` percentiles (0.5–99.5) of the image map to
  0–255, clipping burned-in labels and collimator edges. Percentiles come from a strided
  subsample of about 250,000 pixels, which moves them by at most a grey level or two.
* ``"minmax"``: the image's own minimum → 0 and maximum → 255.

The window becomes a 65,536-entry uint8 table applied by one lookup per pixel. PadChest PNGs
are display-ready (air dark), so nothing is inverted.
"""

from __future__ import annotations

import os
from typing import Literal

import cv2
import numpy as np

from cxrdata.errors import Rejected
from cxrdata.imaging.lut import apply_table, linear_table, table_index_values
from cxrdata.imaging.raster import Raster, resize_longest_side

Window = Literal["percentile", "minmax"]
_SAMPLE_TARGET = 250_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TAIL = 4096  # IEND must be this close to the end (a little trailing junk is tolerated)
_TABLE_VALUES = table_index_values(np.dtype(np.uint16))


def decode_png16(
    source: bytes | str | os.PathLike[str],
    max_side: int = 0,
    window: Window = "percentile",
    low: float = 0.5,
    high: float = 99.5,
    expect_16bit: bool = True,
) -> Raster:
    """Decode a grayscale PNG to uint8 with ``window``; ``max_side`` > 0 shrinks it (INTER_AREA).

    Raises :class:`Rejected`: ``image_truncated`` (no IEND chunk), ``image_corrupt`` (does not
    decode), ``png_not_16bit`` (8-bit PNG while ``expect_16bit``; otherwise it is windowed alike).
    """
    data = _read_bytes(source)
    if not data.startswith(_PNG_SIGNATURE):
        raise Rejected("image_corrupt", "not a PNG (bad signature)")
    if b"IEND" not in data[-_TAIL:]:
        raise Rejected("image_truncated", "PNG ends before its IEND chunk")
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
