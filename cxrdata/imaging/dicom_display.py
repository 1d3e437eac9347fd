"""The DICOM grayscale display pipeline, composed into one uint8 lookup table.

Order (PS3.3 C.11 / PS3.4 N.2): stored value → unused high bits masked (sign-extended when
signed) → modality LUT (Rescale Slope/Intercept or Modality LUT Sequence) → VOI (VOI LUT
Sequence, else the first Window Center/Width under VOILUTFunction, else min–max of the image's
stored range) → MONOCHROME1 inversion, so that air is dark → 8 bits.

Two display modes (``--dicom-display``, FORMATS.md §4.2):

- ``window``: the strict PS3.3 result. A window wider than the image leaves it inside part of
  the output range (NEMA WG04 ``RG1``, a CR chest windowed 15000/30000, lands in 30–248).
- ``stretch`` (default): the same, then a min–max stretch of the image's own grey levels to the
  full 0–255, as the published VinDr-CXR readers do (``apply_voi_lut`` → MONOCHROME1 ``max − x``
  → ``(x − min) / (max − min) · 255``; docs/formats/vindr-cxr.md). Those readers truncate to
  uint8; we round, so the two differ by at most one grey level.

The table is evaluated on every possible stored value of the storage type (256 or 65,536
entries), never on the pixels, so a sigmoid or an arbitrary VOI LUT costs one lookup per pixel;
the stretch reads only the image's stored range (a histogram when the levels are not monotone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut, apply_voi

from cxrdata.imaging.lut import linear_levels, table_index_values, to_uint8

DISPLAY_MODES = ("stretch", "window")
DEFAULT_DISPLAY = "stretch"


@dataclass(frozen=True)
class DisplayTable:
    """A uint8 table indexed by the unsigned bit pattern of a stored pixel, and how it was windowed."""

    table: np.ndarray
    voi: str  # "voi_lut", "window" or "minmax"
    display: str = DEFAULT_DISPLAY  # "stretch" or "window"


def stored_values(dtype: np.dtype, bits_stored: int, signed: bool) -> np.ndarray:
    """The stored value (int64) that each table slot encodes, ignoring bits above ``bits_stored``."""
    slots = table_index_values(np.dtype(dtype)) & ((1 << bits_stored) - 1)
    if signed:
        sign = 1 << (bits_stored - 1)
        slots = (slots ^ sign) - sign
    return slots


def display_table(ds: Dataset, pixels: np.ndarray, display: str = DEFAULT_DISPLAY) -> DisplayTable:
    """Build the composed table for ``pixels`` (decoded from ``ds``, 8/16-bit storage)."""
    if display not in DISPLAY_MODES:
        raise ValueError(f"DICOM display must be one of {', '.join(DISPLAY_MODES)}, not {display!r}")
    bits_stored = min(int(ds.get("BitsStored") or 8 * pixels.dtype.itemsize), 8 * pixels.dtype.itemsize)
    values = stored_values(pixels.dtype, bits_stored, int(ds.get("PixelRepresentation", 0)) == 1)
    modality = np.asarray(apply_modality_lut(values, ds), dtype=np.float64)

    levels = _voi_lut(ds, modality)
    voi = "voi_lut"
    if levels is None:
        levels, voi = _window(ds, modality), "window"
    if levels is None:
        levels, voi = _minmax(modality, values, pixels), "minmax"
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        levels = 255.0 - levels
    if display == "stretch":
        levels = _stretch(levels, values, pixels)
    return DisplayTable(to_uint8(levels), voi, display)


def _stretch(levels: np.ndarray, values: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Min–max of the grey levels the image actually uses, onto 0–255 (unchanged if it uses one)."""
    low, high = _used_levels(levels, values, pixels)
    return levels if high <= low else linear_levels(levels, low, high)


def _used_levels(levels: np.ndarray, values: np.ndarray, pixels: np.ndarray) -> tuple[float, float]:
    """Smallest and largest grey level of the image's pixels.

    When the levels are monotone over the image's stored range (every window and nearly every LUT),
    they are the levels of its smallest and largest stored value; otherwise a histogram of the
    stored values says which table slots occur.
    """
    first, last = _stored_range(pixels, values)
    inside = (values >= first) & (values <= last)
    curve = levels[inside][np.argsort(values[inside], kind="stable")]
    steps = np.diff(curve)
    if (steps >= 0).all() or (steps <= 0).all():
        return float(min(curve[0], curve[-1])), float(max(curve[0], curve[-1]))
    slots = np.ascontiguousarray(pixels).view(f"u{pixels.dtype.itemsize}").reshape(-1)
    used = levels[np.bincount(slots, minlength=levels.size) > 0]
    return float(used.min()), float(used.max())


def _voi_lut(ds: Dataset, modality: np.ndarray) -> np.ndarray | None:
    """First VOI LUT Sequence item, scaled by the smallest power-of-two range holding its data.

    Some writers declare 16 bits per entry for 12-bit data; scaling by the declared depth would
    leave such images nearly black, so the declared depth is only an upper bound.
    """
    items = ds.get("VOILUTSequence")
    if not items:
        return None
    try:
        descriptor = [int(v) for v in items[0].LUTDescriptor]
        entries, first = descriptor[0] or 1 << 16, descriptor[1]
        data = np.asarray(apply_voi(np.arange(first, first + entries, dtype=np.int64), ds), np.int64)
    except Exception:  # malformed or unsupported LUT: fall back to the window
        return None
    bits = min(descriptor[2], max(1, int(data.max()).bit_length()))
    index = np.clip(np.rint(modality) - first, 0, entries - 1).astype(np.int64)
    return linear_levels(data[index], 0, (1 << bits) - 1)


def _window(ds: Dataset, modality: np.ndarray) -> np.ndarray | None:
    """First Window Center/Width pair under VOILUTFunction (PS3.3 C.11.2.1.2); None if unusable."""
    try:
        center = _first(ds.get("WindowCenter"))
        width = _first(ds.get("WindowWidth"))
    except (TypeError, ValueError):
        return None
    if center is None or width is None:
        return None
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
    if function == "SIGMOID" and width > 0:
        return 255.0 / (1.0 + np.exp(-4.0 * (modality - center) / width))
    if function == "LINEAR_EXACT" and width > 0:
        return linear_levels(modality, center - width / 2, center + width / 2)
    if width < 1:
        return None
    # LINEAR: x <= c - 0.5 - (w-1)/2 → 0, x > c - 0.5 + (w-1)/2 → 255, linear in between.
    low = center - 0.5 - (width - 1) / 2
    if width == 1:
        return np.where(modality > low, 255.0, 0.0)
    levels = np.clip(((modality - (center - 0.5)) / (width - 1) + 0.5) * 255.0, 0.0, 255.0)
    levels[modality <= low] = 0.0
    levels[modality > low + width - 1] = 255.0
    return levels


def _minmax(modality: np.ndarray, values: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Linear map of the image's own stored range (after the modality LUT) onto 0–255."""
    low, high = _stored_range(pixels, values)
    present = modality[(values >= low) & (values <= high)]
    return linear_levels(modality, float(present.min()), float(present.max()))


def _stored_range(pixels: np.ndarray, values: np.ndarray) -> tuple[int, int]:
    """Smallest and largest stored value in ``pixels`` (unused high bits ignored)."""
    low, high = int(pixels.min()), int(pixels.max())
    if values.min() <= low and high <= values.max():
        return low, high
    # High bits carry something else (old overlays): measure the masked values instead.
    stored = values[pixels.view(f"u{pixels.dtype.itemsize}").astype(np.int64)]
    return int(stored.min()), int(stored.max())


def _first(value: object) -> float | None:
    """First number of a possibly multi-valued DS element."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    return float(value)  # type: ignore[arg-type]
