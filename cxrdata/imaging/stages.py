"""The image stages: a source file -> the stored image and both sizes (as img2dataset's resizer does).

One code path (:class:`ImageStage`) stores every kind of source in the three modes
(``--image-format`` / ``--image-size``); a subclass only knows how to check and decode its format:

- ``jpeg`` or ``png`` with ``max_side > 0``: decoded to display-ready 8-bit (air dark), shrunk so
  the longest side is ``max_side`` (aspect kept, never enlarged) and re-encoded; with ``fit="shortest"``
  the shortest side is ``max_side`` instead (the LDM recipes: the model was trained on such images);
- ``max_side == 0``: full size. A JPEG source in ``jpeg`` mode keeps its original bytes, untouched
  (still checked to decode). DICOM, 16-bit PNG and 8-bit PNG (whose colour channels are made gray)
  are stored as full-size lossless 8-bit PNG whatever the format asked for (except ``path``);
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from cxrdata.errors import Rejected
from cxrdata.imaging.png8 import check_8bit, decode_png8, png_header, source_notes
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
from cxrdata.recipe import option
from cxrdata.stage import Record, RecordStage, Resources

IMAGE_FORMATS = ("jpeg", "png", "path")
IMAGE_FITS = {"longest": resize_longest_side, "shortest": resize_shortest_side}  # the side that becomes max_side
_SUFFIX = {"jpeg": ".jpg", "png": ".png"}
HEAD_BYTES = 64 * 1024  # first read of a header (grown while the header is not complete)
TAIL_BYTES = 4096  # the end of a file read to check it is whole

Stored = tuple[Any, tuple[int, int], tuple[int, int]]  # image cell, stored size, file's size
IMAGE_GIVES = frozenset({"image", "image_width", "image_height", "original_width", "original_height"})


@dataclass(frozen=True)
class ImageOptions:
    """How a build stores its images (``--image-*`` options, a recipe's ``image:`` section)."""

    size: int = option(512, "Longest side of stored images (see --image-fit; aspect kept, never enlarged); "
                            "0 keeps the original bytes.", cli_name="image-size", bounds=(0, None))
    format: Literal["jpeg", "png", "path"] = option(
        "jpeg", "Re-encode as JPEG or PNG, or store only the absolute path of each source file.",
        cli_name="image-format", choices=IMAGE_FORMATS)
    fit: Literal["longest", "shortest"] = option(
        "longest", "The side that becomes --image-size: longest, or shortest (the chest X-ray LDM's inputs).",
        cli_name="image-fit", choices=("longest", "shortest"))
    max_pixels: int = option(MAX_PIXELS, "Reject an image whose header claims more pixels than this, before "
                                         "decoding it (0: no limit).", cli_name="max-pixels", bounds=(0, None))

    def __post_init__(self) -> None:
        if self.size < 0 or self.max_pixels < 0:
            raise ValueError("--image-size and --max-pixels must be >= 0")


def file_rejected(path: Path, exc: OSError) -> Rejected:
    """The reject for an image file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        return Rejected("image_missing", f"{path} does not exist")
    if isinstance(exc, IsADirectoryError):
        return Rejected("image_unreadable", f"{path} is a folder, not an image file")
    return Rejected("image_unreadable", f"{path}: {exc.strerror or exc}")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise file_rejected(path, exc) from None


def read_head_tail(path: Path, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> tuple[bytes, bytes, int]:
    """The first ``head`` and last ``tail`` bytes of a file, and its size, without reading the rest."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = fh.read(head)
            fh.seek(max(0, size - tail))
            return start, fh.read(tail), size
    except OSError as exc:
        raise file_rejected(path, exc) from None


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

    @classmethod
    def configured(cls, image: ImageOptions, extra: Any = None) -> ImageStage:
        """This image kind as a build's options ask (``extra``: the kind's own options, if it has any)."""
        kind_options = {} if extra is None else {k: getattr(extra, k) for k in vars(extra)}
        return cls(max_side=image.size, image_format=image.format, fit=image.fit, max_pixels=image.max_pixels,
                   **kind_options)

    def records_per_task(self) -> int:
        """Records that make a shard of a few hundred MB in this storage mode."""
        if self.image_format == "path":
            return 50_000
        return self.records_per_task_full_size if self.max_side == 0 else self.records_per_task_resized

    records_per_task_full_size: ClassVar[int] = 400
    records_per_task_resized: ClassVar[int] = 4_000
    options: ClassVar[type | None] = None  # the kind's own options class (e.g. DICOM display), if any
    gives: ClassVar[frozenset[str]] = IMAGE_GIVES
    needs: ClassVar[frozenset[str]] = frozenset({"_image_file"})

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
class Png16ImageStage(ImageStage):
    """A 16-bit grayscale PNG (PadChest-GR), percentile-windowed to 8 bits; an 8-bit PNG is a reject."""

    name: ClassVar[str] = "png16-image"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=16)
    displayable: ClassVar[bool] = False
    records_per_task_full_size: ClassVar[int] = 2_000
    records_per_task_resized: ClassVar[int] = 2_000

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



@dataclass
class Png8ImageStage(ImageStage):
    """An 8-bit PNG (NIH ChestX-ray14), display-ready as stored; an RGB, RGBA or gray+alpha file is made one
    gray channel and noted (:mod:`cxrdata.imaging.png8`). Displayable: path mode keeps the ``Image`` feature."""

    name: ClassVar[str] = "png8-image"

    def probe(self, path: Path, record: Record) -> tuple[int, int]:
        head, tail, _ = read_head_tail(path, head=64)
        width, height, depth, colour = png_header(head)
        if b"IEND" not in tail:
            raise Rejected("image_truncated", "PNG ends before its IEND chunk")
        check_8bit(depth)
        _note(record, source_notes(colour))
        return width, height

    def decode(self, path: Path, record: Record) -> Raster:
        data = read_file(path)
        layout = png_layout(data)
        raster, notes = decode_png8(data, max_side=self.decode_side(layout.width, layout.height),
                                    max_pixels=self.max_pixels)
        _note(record, [*notes, *(["png_trailing_bytes"] if layout.trailing_bytes else [])])
        return raster


def _note(record: Record, notes: list[str]) -> None:
    if notes:
        record.setdefault("_notes", []).extend(notes)
