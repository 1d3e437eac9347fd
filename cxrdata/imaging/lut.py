"""Apply and build 8-bit display lookup tables for 8/16-bit integer images.

A display transform (rescale, window, VOI LUT, inversion) is computed once per image on the few
thousand possible stored values, then applied to every pixel with a single table lookup. That is
exact (the same value always gives the same output), far cheaper than float64 arithmetic per
pixel, and lets any curve (sigmoid, arbitrary VOI LUT) cost the same as a linear window.
"""

from __future__ import annotations

import lazy_loader
import numpy as np

cv2 = lazy_loader.load("cv2")  # imported on first use: a build's driver plans and never decodes

_CHUNK = 1 << 17


def table_index_values(dtype: np.dtype) -> np.ndarray:
    """The value that each table slot stands for, for a table indexed by ``dtype``'s unsigned view.

    For 8-bit and 16-bit storage the table has 256 or 65,536 slots; slot ``i`` holds the output
    for the stored value whose bit pattern is ``i`` (so signed images need no offset).
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        raise ValueError(f"lookup tables cover 8/16-bit integers, not {dtype}")
    slots = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint32).astype(f"u{dtype.itemsize}")
    return slots.view(dtype.newbyteorder("=")).astype(np.int64)


def apply_table(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map an 8/16-bit integer image through a uint8 ``table`` built by :func:`table_index_values`."""
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    if pixels.dtype.itemsize == 1:
        return cv2.LUT(pixels.view(np.uint8), table)
    if pixels.dtype.itemsize != 2:
        raise ValueError(f"lookup tables cover 8/16-bit integers, not {pixels.dtype}")
    # np.take converts its index to intp first; doing that in cache-sized chunks halves the cost.
    flat = np.ascontiguousarray(pixels).view(np.uint16).reshape(-1)
    out = np.empty(flat.shape, np.uint8)
    index = np.empty(min(_CHUNK, flat.size), np.intp)
    for start in range(0, flat.size, _CHUNK):
        stop = min(start + _CHUNK, flat.size)
        part = index[: stop - start]
        np.copyto(part, flat[start:stop], casting="unsafe")
        np.take(table, part, out=out[start:stop], mode="clip")
    return out.reshape(pixels.shape)


def linear_table(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 table mapping ``low`` → 0 and ``high`` → 255 linearly, clipped outside."""
    return to_uint8(linear_levels(values, low, high))


def linear_levels(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """float64 grey levels mapping ``low`` → 0.0 and ``high`` → 255.0 linearly, clipped outside
    (all 0 when ``high <= low``); kept unrounded so that a later stretch rounds only once."""
    if high <= low:
        return np.zeros(values.shape, np.float64)
    return np.clip((values.astype(np.float64) - low) * 255.0 / (high - low), 0.0, 255.0)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip a float array to uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
