"""Decode a DICOM radiograph to display-ready 8-bit grayscale (air dark), plus a safe header.

Reads with ``force=True``; infers a missing Transfer Syntax UID; decodes native, RLE, JPEG
(baseline, extended, lossless), JPEG-LS and JPEG 2000 pixel data through pydicom and the
pylibjpeg plugins; applies modality LUT → VOI → MONOCHROME1 inversion (→ min–max stretch in the
default ``stretch`` display) as one lookup table (:mod:`cxrdata.imaging.dicom_display`). Only the
first frame of a multi-frame file is used.

Per-file problems raise :class:`Rejected` with one of: ``image_unreadable`` (I/O error),
``dicom_invalid`` (not DICOM, or the image attributes are missing), ``dicom_no_pixels``,
``dicom_unsupported`` (colour, >16-bit storage), ``dicom_decode_failed`` (``"<transfer syntax
name>: <reason>"``), ``dicom_lut_invalid``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import JPEG2000TransferSyntaxes

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom_display import DEFAULT_DISPLAY, DISPLAY_MODES, display_table
from cxrdata.imaging.dicom_syntax import infer_transfer_syntax
from cxrdata.imaging.j2k_reduced import decode_j2k_reduced
from cxrdata.imaging.lut import apply_table
from cxrdata.imaging.raster import Raster, resize_longest_side

# The only header fields that leave this module: nothing that identifies a patient.
HEADER_FIELDS = (
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "PhotometricInterpretation",
    "BitsStored",
    "ViewPosition",
    "TransferSyntaxUID",
)
_REQUIRED = ("Rows", "Columns", "BitsAllocated")
_LOOKS_LIKE_DICOM = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Modality", "Rows", "PixelData")


@dataclass(frozen=True)
class DicomImage:
    """A display-ready image and the whitelisted header of the file it came from."""

    pixels: np.ndarray  # uint8, H x W (resized when max_side asked for it)
    width: int  # original Columns
    height: int  # original Rows
    header: dict[str, Any] = field(default_factory=dict)
    voi: str = "minmax"  # which VOI step was applied: "voi_lut", "window" or "minmax"
    display: str = DEFAULT_DISPLAY  # "stretch" (min–max after the VOI step) or "window" (strict)
    syntax_inferred: bool = False  # True when the file lacked a Transfer Syntax UID

    @property
    def raster(self) -> Raster:
        return Raster(self.pixels, self.width, self.height)


def decode_dicom(source: bytes | str | os.PathLike[str], max_side: int = 0, reduced_decode: bool = True,
                 display: str = DEFAULT_DISPLAY) -> DicomImage:
    """Decode ``source`` (file bytes or a path); ``max_side`` > 0 shrinks the result (INTER_AREA).

    ``display``: ``stretch`` (the published VinDr-CXR readers' rendering) or ``window`` (strict
    PS3.3); see :mod:`cxrdata.imaging.dicom_display`.

    With ``reduced_decode`` and ``max_side``, JPEG 2000 pixel data is decoded at the coarsest
    wavelet resolution still ≥ ``max_side`` (:mod:`cxrdata.imaging.j2k_reduced`, ~10× faster),
    so the low-pass happens before the lookup table rather than after it; set it False for the
    strict LUT-then-resize order.
    """
    if display not in DISPLAY_MODES:  # a caller's bug, not a file's problem: never a reject
        raise ValueError(f"DICOM display must be one of {', '.join(DISPLAY_MODES)}, not {display!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns per odd element; rejects carry the reasons
        ds = _read(source)
        inferred = _ensure_transfer_syntax(ds)
        _check_image_attributes(ds)
        pixels = _decode_reduced(ds, max_side) if reduced_decode and max_side > 0 else None
        if pixels is None:
            pixels = _decode_first_frame(ds)
        try:
            shown = display_table(ds, pixels, display)
        except Exception as exc:
            raise Rejected("dicom_lut_invalid", _reason(exc)) from None
    image = resize_longest_side(apply_table(pixels, shown.table), max_side)
    return DicomImage(
        pixels=image,
        width=int(ds.Columns),
        height=int(ds.Rows),
        header=safe_header(ds),
        voi=shown.voi,
        display=shown.display,
        syntax_inferred=inferred,
    )


def safe_header(ds: Dataset) -> dict[str, Any]:
    """The whitelisted header fields as plain Python values (None when absent or malformed)."""
    header: dict[str, Any] = {}
    for name in HEADER_FIELDS:
        try:
            value = ds.file_meta.get(name) if name == "TransferSyntaxUID" else ds.get(name)
            header[name] = _plain(value)
        except Exception:
            header[name] = None
    return header


def _read(source: bytes | str | os.PathLike[str]) -> Dataset:
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
        ds = pydicom.dcmread(fp, force=True)
        looks_like_dicom = ds.preamble is not None or any(name in ds for name in _LOOKS_LIKE_DICOM)
    except OSError as exc:
        raise Rejected("image_unreadable", _reason(exc)) from None
    except Exception as exc:
        raise Rejected("dicom_invalid", _reason(exc)) from None
    if not looks_like_dicom:
        raise Rejected("dicom_invalid", "no DICOM preamble and no image or SOP elements")
    if "PixelData" not in ds:
        raise Rejected("dicom_no_pixels", "dataset has no (7FE0,0010) Pixel Data")
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> bool:
    """Set ``file_meta.TransferSyntaxUID`` when missing; True when it had to be inferred."""
    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    if ds.file_meta.get("TransferSyntaxUID"):
        return False
    syntax = infer_transfer_syntax(ds)
    if syntax is None:
        raise Rejected("dicom_decode_failed", "unknown transfer syntax: missing and not inferable")
    ds.file_meta.TransferSyntaxUID = syntax
    return True


def _check_image_attributes(ds: Dataset) -> None:
    missing = [name for name in _REQUIRED if ds.get(name) in (None, "")]
    if missing:
        raise Rejected("dicom_invalid", f"missing image attribute(s): {', '.join(missing)}")
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip()
    samples = int(ds.get("SamplesPerPixel") or 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise Rejected("dicom_unsupported", f"{photometric} with {samples} sample(s) per pixel is not grayscale")
    if int(ds.BitsAllocated) > 16:
        raise Rejected("dicom_unsupported", f"BitsAllocated {ds.BitsAllocated}: radiographs use 8 or 16")
    if "PhotometricInterpretation" not in ds:
        ds.PhotometricInterpretation = photometric


def _decode_first_frame(ds: Dataset) -> np.ndarray:
    """Frame 0 as stored integers; unused high bits are left for the lookup table to mask."""
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        pixels = pixel_array(ds, index=0, raw=True, view_only=True, correct_unused_bits=False)
    except Exception as exc:
        raise Rejected("dicom_decode_failed", f"{syntax.name}: {_reason(exc)}") from None
    if pixels.ndim != 2 or pixels.dtype.kind not in "ui" or pixels.dtype.itemsize > 2:
        raise Rejected("dicom_decode_failed", f"{syntax.name}: decoded to {pixels.dtype} {pixels.shape}")
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


def _decode_reduced(ds: Dataset, max_side: int) -> np.ndarray | None:
    """Frame 0 of JPEG 2000 pixel data at reduced resolution, or None to use the full decode."""
    if ds.file_meta.TransferSyntaxUID not in JPEG2000TransferSyntaxes:
        return None
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=int(ds.get("NumberOfFrames") or 1))
        bits_stored = int(ds.get("BitsStored") or ds.BitsAllocated)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
    except Exception:
        return None
    return decode_j2k_reduced(frame, max_side, bits_stored, signed)


def _plain(value: Any) -> Any:
    """pydicom values (MultiValue, DSfloat, IS, UID, PersonName...) as JSON/Arrow-friendly types."""
    if value is None or value == "":
        return None
    if isinstance(value, str):  # UID and CS are str subclasses
        return str(value).strip()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return [_plain(v) for v in value]


def _reason(exc: BaseException) -> str:
    """One line naming the failure: exception type and its message, lines joined, at most 300 chars."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."
