"""The image stage: a source file -> the stored image and both sizes (as img2dataset's resizer does).

Three storage modes (``--image-format`` / ``--image-size``):

- ``jpeg`` or ``png`` with ``max_side > 0``: decoded, shrunk so the longest side is ``max_side``
  (aspect kept, never enlarged) and re-encoded;
- ``jpeg`` with ``max_side == 0``: the original JPEG bytes, untouched (still checked to decode);
- ``path``: a reference to the file only (its header and end marker are checked, nothing decoded).

The record must carry ``_image_file`` (absolute path) and may carry ``_original_size`` (width,
height) from the dataset's metadata, which then wins over the file's own size (MIMIC metadata
gives the full-resolution size even when a user holds a resized tree); a disagreement is noted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cxrdata.errors import Rejected
from cxrdata.imaging.raster import decode_jpeg, encode, jpeg_size, resize_longest_side
from cxrdata.pipeline.stage import Record, RecordStage, Resources

IMAGE_FORMATS = ("jpeg", "png", "path")


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Rejected("image_missing", f"{path} does not exist") from None
    except OSError as exc:
        raise Rejected("image_unreadable", f"{path}: {exc.strerror or exc}") from None


@dataclass
class JpegImageStage(RecordStage):
    """Stores a JPEG source image (MIMIC-CXR-JPG) in the configured form. Never inverts."""

    name: ClassVar[str] = "image"
    version: ClassVar[str] = "1"
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=32)

    max_side: int = 512
    image_format: str = "jpeg"
    quality: int = 95

    def __post_init__(self) -> None:
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image format must be one of {IMAGE_FORMATS}, not {self.image_format!r}")

    def fingerprint(self) -> str:
        return f"{self.name}@{self.version}:{self.image_format}:{self.max_side}:q{self.quality}"

    def process(self, record: Record) -> Record:
        path = Path(record["_image_file"])
        data = read_file(path)
        if self.image_format == "path":
            width, height = jpeg_size(data)
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise Rejected("image_truncated", f"{path.name}: JPEG ends before its EOI marker")
            stored, stored_size = {"bytes": None, "path": str(path)}, (width, height)
        elif self.max_side == 0 and self.image_format == "jpeg":
            raster = decode_jpeg(data, max_side=1)  # cheapest full check: 1/8-scale decode
            width, height = raster.original_width, raster.original_height
            stored, stored_size = {"bytes": data, "path": path.name}, (width, height)
        else:
            raster = decode_jpeg(data, max_side=self.max_side)
            width, height = raster.original_width, raster.original_height
            pixels = resize_longest_side(raster.pixels, self.max_side)
            suffix = ".jpg" if self.image_format == "jpeg" else ".png"
            stored = {"bytes": encode(pixels, self.image_format, self.quality), "path": path.stem + suffix}
            stored_size = (pixels.shape[1], pixels.shape[0])
        original = record.get("_original_size") or (width, height)
        if tuple(original) != (width, height):
            record.setdefault("_notes", []).append("image_size_differs_from_metadata")
        record["image"] = stored
        record["image_width"], record["image_height"] = stored_size
        if self.image_format == "path" or self.max_side == 0:
            record["image_width"], record["image_height"] = width, height
        record["original_width"], record["original_height"] = int(original[0]), int(original[1])
        return record
