"""The image stages: a source file -> the stored image and both sizes (as img2dataset's resizer does).

One code path (:class:`ImageStage`) stores every kind of source in the three modes
(``--image-format`` / ``--image-size``); a subclass only knows how to check and decode its format:

- ``jpeg`` or ``png`` with ``max_side > 0``: decoded to display-ready 8-bit (air dark), shrunk so
  the longest side is ``max_side`` (aspect kept, never enlarged) and re-encoded; with ``fit="shortest"``
  the shortest side is ``max_side`` instead (the LDM recipes: the model was trained on such images);
- ``max_side == 0``: full size. A JPEG source in ``jpeg`` mode keeps its original bytes, untouched
  (still checked to decode). DICOM and 16-bit PNG are not displayable formats, so they are stored
  as full-size lossless 8-bit PNG whatever the format asked for (except ``path``);
- ``path``: a reference to the file only, as an absolute path (so a dataset loads from any working
  directory). Only the file's header and its last bytes are read to check it is whole; nothing is
  decoded. A displayable source (JPEG) keeps the ``Image`` feature (``{bytes: null, path}``, which
  ``datasets`` opens); a DICOM or 16-bit PNG, which no ``datasets`` image decoder displays
  correctly, is stored as a plain string path (:func:`output_schema` retypes the column).

A header claiming more than ``max_pixels`` pixels is rejected (``image_too_large``) before decoding.
The record must carry ``_image_file`` and may carry ``_original_size`` (width, height) from the
dataset's metadata, which then wins over the file's own size (MIMIC metadata gives the
full-resolution size even when a user holds a resized tree); a disagreement is noted.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pydicom
from pydicom import uid

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom import decode_dicom, safe_header
from cxrdata.imaging.dicom_syntax import syntax_from_fragment
from cxrdata.imaging.png16 import decode_png16, png_layout, png_size
from cxrdata.imaging.raster import (
    MAX_PIXELS,
    Raster,
    check_pixel_count,
    decode_jpeg,
    encode,
    ends_with_eoi,
    jpeg_size,
    resize_longest_side,
    resize_shortest_side,
)
from cxrdata.io.schema import TableSchema, image_columns_as_paths
from cxrdata.pipeline.stage import Record, RecordStage, Resources, Stage

IMAGE_FORMATS = ("jpeg", "png", "path")
IMAGE_FITS = {"longest": resize_longest_side, "shortest": resize_shortest_side}  # the side that becomes max_side
_SUFFIX = {"jpeg": ".jpg", "png": ".png"}
_LOOKS_LIKE_DICOM = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Modality", "Rows", "PixelData")
_HEAD = 64 * 1024  # first read of a header (grown while the header is not complete)
_TAIL = 4096  # the end of a file read to check it is whole
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), little endian, length 0

Stored = tuple[Any, tuple[int, int], tuple[int, int]]  # image cell, stored size, file's size


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Rejected("image_missing", f"{path} does not exist") from None
    except IsADirectoryError:
        raise Rejected("image_unreadable", f"{path} is a folder, not an image file") from None
    except OSError as exc:
        raise Rejected("image_unreadable", f"{path}: {exc.strerror or exc}") from None


def read_head_tail(path: Path, head: int = _HEAD, tail: int = _TAIL) -> tuple[bytes, bytes, int]:
    """The first ``head`` and last ``tail`` bytes of a file, and its size, without reading the rest."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = fh.read(head)
            fh.seek(max(0, size - tail))
            return start, fh.read(tail), size
    except FileNotFoundError:
        raise Rejected("image_missing", f"{path} does not exist") from None
    except IsADirectoryError:
        raise Rejected("image_unreadable", f"{path} is a folder, not an image file") from None
    except OSError as exc:
        raise Rejected("image_unreadable", f"{path}: {exc.strerror or exc}") from None


@dataclass
class ImageStage(RecordStage):
    """Stores the record's image in the configured form; subclasses implement ``probe`` and ``decode``."""

    name: ClassVar[str] = "image"
    version: ClassVar[str] = "2"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=32)
    displayable: ClassVar[bool] = True  # can `datasets`' Image feature show the source file as it is?

    max_side: int = 512
    image_format: str = "jpeg"
    quality: int = 95
    max_pixels: int = MAX_PIXELS
    fit: str = "longest"  # the side that becomes max_side: longest | shortest (never enlarged either way)

    def __post_init__(self) -> None:
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image format must be one of {IMAGE_FORMATS}, not {self.image_format!r}")
        if self.fit not in IMAGE_FITS:
            raise ValueError(f"image fit must be one of {tuple(IMAGE_FITS)}, not {self.fit!r}")

    def fingerprint(self) -> str:
        fit = "" if self.fit == "longest" else f":fit={self.fit}"
        return (f"{self.name}@{self.version}:{self.image_format}:{self.max_side}:q{self.quality}"
                f":max{self.max_pixels}{fit}")

    def decode_side(self, width: int, height: int) -> int:
        """The longest side a decoder may shrink to before :meth:`store` resizes: ``max_side`` (fit longest),
        or with fit shortest the longest side that keeps the short side at ``max_side``."""
        if self.fit == "longest" or not self.max_side:
            return self.max_side
        return -(-self.max_side * max(width, height) // min(width, height))

    @property
    def stores_path_strings(self) -> bool:
        """Whether the image column holds plain path strings (path mode of a non-displayable source)."""
        return self.image_format == "path" and not self.displayable

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        """(width, height) from the file's header after checking it is whole (``path`` mode)."""
        raise NotImplementedError

    def decode(self, path: Path, record: Record) -> Raster:
        """Display-ready uint8 pixels, at least ``max_side`` on the longest side when it is > 0."""
        raise NotImplementedError

    def store(self, path: Path, record: Record) -> Stored:
        """Decode, shrink and re-encode (full-size lossless PNG when ``max_side`` is 0)."""
        raster = self.decode(path, record)
        pixels = IMAGE_FITS[self.fit](raster.pixels, self.max_side)
        fmt = "png" if self.max_side == 0 else self.image_format
        cell = {"bytes": encode(pixels, fmt, self.quality), "path": path.stem + _SUFFIX[fmt]}
        return cell, (pixels.shape[1], pixels.shape[0]), (raster.original_width, raster.original_height)

    def process(self, record: Record) -> Record:
        path = Path(record["_image_file"])
        if self.image_format == "path":
            size = self.probe(path, record)
            check_pixel_count(*size, self.max_pixels)
            absolute = os.path.abspath(path)
            cell = absolute if self.stores_path_strings else {"bytes": None, "path": absolute}
            stored_size = size
        else:
            cell, stored_size, size = self.store(path, record)
        original = record.get("_original_size") or size
        if tuple(original) != tuple(size):
            record.setdefault("_notes", []).append("image_size_differs_from_metadata")
        record["image"] = cell
        record["image_width"], record["image_height"] = stored_size
        record["original_width"], record["original_height"] = int(original[0]), int(original[1])
        return record


@dataclass
class JpegImageStage(ImageStage):
    """A JPEG source (MIMIC-CXR-JPG): display-ready already, so never inverted."""

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        head, tail, size = read_head_tail(path)
        while True:  # APP segments (EXIF, ICC) may push the frame header past the first read
            try:
                width_height = jpeg_size(head)
                break
            except Rejected:
                if len(head) >= size:
                    raise
                head, tail, size = read_head_tail(path, head=len(head) * 4)
        if not ends_with_eoi(tail):
            raise Rejected("image_truncated", f"{path.name}: JPEG ends before its EOI marker")
        return width_height

    def decode(self, path: Path, record: Record) -> Raster:
        data = read_file(path)
        return decode_jpeg(data, max_side=self.decode_side(*jpeg_size(data)), max_pixels=self.max_pixels)

    def store(self, path: Path, record: Record) -> Stored:
        if self.max_side or self.image_format != "jpeg":
            return super().store(path, record)
        data = read_file(path)
        raster = decode_jpeg(data, max_side=1, max_pixels=self.max_pixels)  # full check, 1/8-scale IDCT
        size = (raster.original_width, raster.original_height)
        return {"bytes": data, "path": path.name}, size, size


@dataclass
class DicomImageStage(ImageStage):
    """A DICOM source: modality LUT -> VOI -> MONOCHROME1 inversion (:mod:`cxrdata.imaging.dicom`).

    Leaves the whitelisted header (no patient tags) in ``_dicom_header`` for the dataset's stages.
    """

    name: ClassVar[str] = "dicom-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)
    displayable: ClassVar[bool] = False
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
            pixel_head = fh.read(_HEAD)
            fh.seek(max(pixels_at, size - _TAIL))
            tail = fh.read()
    except FileNotFoundError:
        raise Rejected("image_missing", f"{path} does not exist") from None
    except IsADirectoryError:
        raise Rejected("image_unreadable", f"{path} is a folder, not an image file") from None
    except OSError as exc:
        raise Rejected("image_unreadable", f"{path}: {exc.strerror or exc}") from None
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


@dataclass
class Png16ImageStage(ImageStage):
    """A 16-bit grayscale PNG (PadChest-GR), percentile-windowed to 8 bits; an 8-bit PNG is a reject."""

    name: ClassVar[str] = "png16-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)
    displayable: ClassVar[bool] = False

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        head, tail, _ = read_head_tail(path, head=64)
        width, height, depth = png_size(head)
        if b"IEND" not in tail:
            raise Rejected("image_truncated", "PNG ends before its IEND chunk")
        if depth != 16:
            raise Rejected("png_not_16bit", f"expected a 16-bit grayscale PNG, got {depth}-bit")
        return width, height

    def decode(self, path: Path, record: Record) -> Raster:
        data = read_file(path)
        layout = png_layout(data)
        if layout.trailing_bytes:
            record.setdefault("_notes", []).append("png_trailing_bytes")
        return decode_png16(data, max_side=self.decode_side(layout.width, layout.height), max_pixels=self.max_pixels)


def output_schema(schema: TableSchema, stages: Iterable[Stage]) -> TableSchema:
    """The table a config writes: its schema, with the image column as a string path when its image stage
    stores path strings (see :attr:`ImageStage.stores_path_strings`)."""
    if any(isinstance(stage, ImageStage) and stage.stores_path_strings for stage in stages):
        return image_columns_as_paths(schema)
    return schema
