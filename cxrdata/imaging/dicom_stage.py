"""The DICOM image stage (VinDr-CXR): modality LUT -> VOI -> MONOCHROME1 inversion, and its path-mode checks."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pydicom
from pydicom import uid

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom import decode_dicom, safe_header
from cxrdata.imaging.dicom_syntax import syntax_from_fragment
from cxrdata.imaging.raster import Raster, check_pixel_count
from cxrdata.imaging.stages import HEAD_BYTES, TAIL_BYTES, ImageStage, file_rejected, read_file
from cxrdata.recipe import option
from cxrdata.stage import Record, Resources

_LOOKS_LIKE_DICOM = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Modality", "Rows", "PixelData")
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), little endian, length 0


@dataclass(frozen=True)
class DicomDisplay:
    """The DICOM image kind's own option."""

    display: Literal["stretch", "window"] = option(
        "stretch", "DICOM to 8 bits: stretch (VOI LUT or window, MONOCHROME1 inversion, then min-max to 0-255, "
                   "as published VinDr-CXR readers do) or window (the strict PS3.3 window only).",
        cli_name="dicom-display", choices=("stretch", "window"))


@dataclass
class DicomImageStage(ImageStage):
    """A DICOM source: modality LUT -> VOI -> MONOCHROME1 inversion (:mod:`cxrdata.imaging.dicom`).

    Leaves the whitelisted header (no patient tags) in ``_dicom_header`` for the dataset's stages.
    """

    name: ClassVar[str] = "dicom-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)
    displayable: ClassVar[bool] = False
    records_per_task_full_size: ClassVar[int] = 2_000
    records_per_task_resized: ClassVar[int] = 2_000
    options: ClassVar[type | None] = DicomDisplay
    gives: ClassVar[frozenset[str]] = ImageStage.gives | {"_dicom_header"}
    display: str = "stretch"  # --dicom-display: stretch or window (cxrdata.imaging.dicom_display)

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        header = read_dicom_header(path)
        if header.syntax_inferred:
            record.setdefault("_notes", []).append("dicom_transfer_syntax_inferred")
        record["_dicom_header"] = safe_header(header.dataset)
        return int(header.dataset.Columns), int(header.dataset.Rows)

    def decode(self, path: Path, record: Record) -> Raster:
        header = read_dicom_header(path).dataset
        width, height = int(header.Columns), int(header.Rows)
        check_pixel_count(width, height, self.max_pixels)
        image = decode_dicom(read_file(path), max_side=self.decode_side(width, height), display=self.display)
        if image.syntax_inferred:
            record.setdefault("_notes", []).append("dicom_transfer_syntax_inferred")
        record["_dicom_header"] = image.header
        return image.raster


@dataclass(frozen=True)
class DicomHeader:
    """A DICOM file's dataset without its Pixel Data, after the ``path`` mode checks."""

    dataset: pydicom.Dataset
    syntax_inferred: bool


def read_dicom_header(path: Path) -> DicomHeader:
    """Read a DICOM file up to its Pixel Data, then check that element from its first and last bytes.

    Checks: image attributes present, a (7FE0,0010) Pixel Data element, native data as long as the
    image needs and inside the file, encapsulated data closed by its sequence delimiter. A missing
    Transfer Syntax UID is inferred as the decoder infers it (from the first fragment's magic bytes).
    """
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            size = os.fstat(fh.fileno()).st_size
            ds = pydicom.dcmread(fh, force=True, stop_before_pixels=True)
            pixels_at = fh.tell()
            pixel_head = fh.read(HEAD_BYTES)
            fh.seek(max(pixels_at, size - TAIL_BYTES))
            tail = fh.read()
    except OSError as exc:
        raise file_rejected(path, exc) from None
    except Exception as exc:
        raise Rejected("dicom_invalid", f"{type(exc).__name__}: {exc}") from None
    if ds.preamble is None and not any(name in ds for name in _LOOKS_LIKE_DICOM[:-1]):
        raise Rejected("dicom_invalid", "no DICOM preamble and no image or SOP elements")
    if ds.get("Rows") in (None, "") or ds.get("Columns") in (None, ""):
        raise Rejected("dicom_invalid", "not a DICOM image: no Rows/Columns")
    implicit = ds.original_encoding[0] is True
    value_at, length = _pixel_element(pixel_head, implicit)
    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    inferred = not ds.file_meta.get("TransferSyntaxUID")
    if length == _UNDEFINED:
        if _SEQUENCE_DELIMITER not in tail:
            raise Rejected("image_truncated", "encapsulated Pixel Data has no sequence delimiter (file cut short)")
        if inferred and (syntax := syntax_from_fragment(_first_fragment(pixel_head[value_at:]))) is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        return DicomHeader(ds, inferred)
    if pixels_at + value_at + length > size:
        raise Rejected("image_truncated", f"Pixel Data claims {length} bytes, the file holds "
                                          f"{size - pixels_at - value_at}")
    if inferred and (syntax := _NATIVE.get(ds.original_encoding)) is not None:  # as the file was parsed
        ds.file_meta.TransferSyntaxUID = syntax
    encapsulated = pixel_head[value_at : value_at + 4] == _ITEM
    needed = int(ds.Rows) * int(ds.Columns) * -(-int(ds.get("BitsAllocated") or 16) // 8)
    needed *= int(ds.get("SamplesPerPixel") or 1)
    if not encapsulated and length < needed:
        raise Rejected("image_truncated", f"Pixel Data holds {length} bytes, the image needs {needed}")
    return DicomHeader(ds, inferred)


_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian
_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000)
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN")
_NATIVE = {(True, True): uid.ImplicitVRLittleEndian, (False, True): uid.ExplicitVRLittleEndian,
           (False, False): uid.ExplicitVRBigEndian}


def _pixel_element(head: bytes, implicit: bool) -> tuple[int, int]:
    """(offset of the value, value length) of the Pixel Data element that starts ``head``."""
    if len(head) < 8 or head[:4] != _PIXEL_TAG:
        raise Rejected("dicom_no_pixels", "dataset has no (7FE0,0010) Pixel Data")
    if not implicit and head[4:6] in _LONG_VRS:
        return 12, int.from_bytes(head[8:12], "little")
    return 8, int.from_bytes(head[4:8], "little")


def _first_fragment(value: bytes) -> bytes:
    """The start of the first fragment after the Basic Offset Table item of encapsulated data."""
    if value[:4] != _ITEM:
        return b""
    table_length = int.from_bytes(value[4:8], "little")
    second = value[8 + table_length :]
    return second[8:] if second[:4] == _ITEM else b""
