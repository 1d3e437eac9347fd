"""The image stages: a source file -> the stored image and both sizes (as img2dataset's resizer does).

One code path (:class:`ImageStage`) stores every kind of source in the three modes
(``--image-format`` / ``--image-size``); a subclass only knows how to check and decode its format:

- ``jpeg`` or ``png`` with ``max_side > 0``: decoded to display-ready 8-bit (air dark), shrunk so
  the longest side is ``max_side`` (aspect kept, never enlarged) and re-encoded; with ``fit="shortest"``
  the shortest side is ``max_side`` instead (the LDM recipes: the model was trained on such images);
- ``max_side == 0``: full size. A JPEG source in ``jpeg`` mode keeps its original bytes, untouched
  (still checked to decode). DICOM and 16-bit PNG are not displayable formats, so they are stored
  as full-size lossless 8-bit PNG whatever the format asked for (except ``path``);
- ``path``: a reference to the file only (its header and end are checked, nothing decoded).

The record must carry ``_image_file`` (absolute path) and may carry ``_original_size`` (width,
height) from the dataset's metadata, which then wins over the file's own size (MIMIC metadata
gives the full-resolution size even when a user holds a resized tree); a disagreement is noted.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pydicom
from pydicom.encaps import generate_fragments

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom import decode_dicom, safe_header
from cxrdata.imaging.dicom_syntax import infer_transfer_syntax
from cxrdata.imaging.png16 import decode_png16
from cxrdata.imaging.raster import Raster, decode_jpeg, encode, jpeg_size, resize_longest_side, resize_shortest_side
from cxrdata.pipeline.stage import Record, RecordStage, Resources

IMAGE_FORMATS = ("jpeg", "png", "path")
IMAGE_FITS = {"longest": resize_longest_side, "shortest": resize_shortest_side}  # the side that becomes max_side
_SUFFIX = {"jpeg": ".jpg", "png": ".png"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LOOKS_LIKE_DICOM = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Modality", "Rows", "PixelData")

Stored = tuple[dict[str, Any], tuple[int, int], tuple[int, int]]  # image cell, stored size, file's size


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Rejected("image_missing", f"{path} does not exist") from None
    except OSError as exc:
        raise Rejected("image_unreadable", f"{path}: {exc.strerror or exc}") from None


@dataclass
class ImageStage(RecordStage):
    """Stores the record's image in the configured form; subclasses implement ``probe`` and ``decode``."""

    name: ClassVar[str] = "image"
    version: ClassVar[str] = "1"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=32)

    max_side: int = 512
    image_format: str = "jpeg"
    quality: int = 95
    fit: str = "longest"  # the side that becomes max_side: longest | shortest (never enlarged either way)

    def __post_init__(self) -> None:
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image format must be one of {IMAGE_FORMATS}, not {self.image_format!r}")
        if self.fit not in IMAGE_FITS:
            raise ValueError(f"image fit must be one of {tuple(IMAGE_FITS)}, not {self.fit!r}")

    def fingerprint(self) -> str:
        fit = "" if self.fit == "longest" else f":fit={self.fit}"  # unchanged for the builds made before `fit`
        return f"{self.name}@{self.version}:{self.image_format}:{self.max_side}:q{self.quality}{fit}"

    def decode_side(self, width: int | None = None, height: int | None = None) -> int:
        """The longest side a decoder may shrink to before :meth:`store` resizes: ``max_side`` (fit longest), or
        with fit shortest the longest side that keeps the short side at ``max_side`` (0, full size, when the
        size is not known before decoding)."""
        if self.fit == "longest" or not self.max_side:
            return self.max_side
        if not width or not height:
            return 0
        return -(-self.max_side * max(width, height) // min(width, height))

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
            cell, stored_size = {"bytes": None, "path": str(path)}, size
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
        data = read_file(path)
        size = jpeg_size(data)
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise Rejected("image_truncated", f"{path.name}: JPEG ends before its EOI marker")
        return size

    def decode(self, path: Path, record: Record) -> Raster:
        data = read_file(path)
        return decode_jpeg(data, max_side=self.decode_side(*jpeg_size(data)))

    def store(self, path: Path, record: Record) -> Stored:
        if self.max_side or self.image_format != "jpeg":
            return super().store(path, record)
        data = read_file(path)
        raster = decode_jpeg(data, max_side=1)  # cheapest full check: 1/8-scale decode
        size = (raster.original_width, raster.original_height)
        return {"bytes": data, "path": path.name}, size, size


@dataclass
class DicomImageStage(ImageStage):
    """A DICOM source: modality LUT -> VOI -> MONOCHROME1 inversion (:mod:`cxrdata.imaging.dicom`).

    Leaves the whitelisted header (no patient tags) in ``_dicom_header`` for the dataset's stages.
    """

    name: ClassVar[str] = "dicom-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(io.BytesIO(read_file(path)), force=True)
            except Exception as exc:
                raise Rejected("dicom_invalid", f"{type(exc).__name__}: {exc}") from None
            if _check_pixel_data(ds):
                record.setdefault("_notes", []).append("dicom_transfer_syntax_inferred")
        record["_dicom_header"] = safe_header(ds)
        return int(ds.Columns), int(ds.Rows)

    def decode(self, path: Path, record: Record) -> Raster:
        image = decode_dicom(read_file(path), max_side=self.decode_side())
        if image.syntax_inferred:
            record.setdefault("_notes", []).append("dicom_transfer_syntax_inferred")
        record["_dicom_header"] = image.header
        return image.raster


def _check_pixel_data(ds: pydicom.Dataset) -> bool:
    """``path`` mode's header-level checks: image attributes, Pixel Data present and whole.

    Infers a missing Transfer Syntax UID as the decoder does; True when it had to.
    """
    if ds.preamble is None and not any(name in ds for name in _LOOKS_LIKE_DICOM):
        raise Rejected("dicom_invalid", "no DICOM preamble and no image or SOP elements")
    if "PixelData" not in ds:
        raise Rejected("dicom_no_pixels", "dataset has no (7FE0,0010) Pixel Data")
    if ds.get("Rows") in (None, "") or ds.get("Columns") in (None, ""):
        raise Rejected("dicom_invalid", "not a DICOM image: no Rows/Columns")
    if not hasattr(ds, "file_meta"):
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    inferred = not ds.file_meta.get("TransferSyntaxUID")
    if inferred and (syntax := infer_transfer_syntax(ds)) is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is not None and syntax.is_encapsulated:
        try:
            fragments = list(generate_fragments(ds.PixelData))
        except Exception as exc:
            raise Rejected("image_truncated", f"encapsulated Pixel Data does not parse: {exc}") from None
        if not fragments:
            raise Rejected("image_truncated", "encapsulated Pixel Data has no fragments")
        return inferred
    needed = int(ds.Rows) * int(ds.Columns) * -(-int(ds.get("BitsAllocated") or 16) // 8)
    needed *= int(ds.get("SamplesPerPixel") or 1)
    if len(ds.PixelData) < needed:
        raise Rejected("image_truncated", f"Pixel Data holds {len(ds.PixelData)} bytes, the image needs {needed}")
    return inferred


@dataclass
class Png16ImageStage(ImageStage):
    """A 16-bit grayscale PNG (PadChest-GR), percentile-windowed to 8 bits; an 8-bit PNG is a reject."""

    name: ClassVar[str] = "png16-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        data = read_file(path)
        if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
            raise Rejected("image_corrupt", "not a PNG (bad signature or no IHDR)")
        if b"IEND" not in data[-4096:]:
            raise Rejected("image_truncated", "PNG ends before its IEND chunk")
        if data[24] != 16:
            raise Rejected("png_not_16bit", f"expected a 16-bit grayscale PNG, got {data[24]}-bit")
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    def decode(self, path: Path, record: Record) -> Raster:
        return decode_png16(read_file(path), max_side=self.decode_side())
