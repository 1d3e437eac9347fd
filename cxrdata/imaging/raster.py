"""8-bit grayscale rasters: decode (with libjpeg's DCT-domain downscaling), resize, encode.

simplejpeg (libjpeg-turbo) decodes JPEGs in strict mode: libjpeg's warnings ("Corrupt JPEG data",
"premature end of data segment"), which OpenCV only prints while it returns an image, raise, so a
damaged file becomes a reject instead of a silently grey or half-black image. A JPEG that will be
shrunk anyway is decoded at 1/2, 1/4 or 1/8 scale straight from its DCT coefficients whenever the
reduced image is still at least as large as the target. That skips most of the inverse DCT and
shrinks the resize, but not the Huffman decoding, which dominates a quality-95 radiograph: decode +
resize to 512 is ~1.3× faster than full decode + resize (benchmarks/decode_throughput.py), not 4-8×.
The pixels equal OpenCV's own decode (same libjpeg-turbo, same integer IDCT). OpenCV resizes and
encodes. A header that claims more than ``max_pixels`` pixels is refused before any decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import lazy_loader
import numpy as np
import simplejpeg

from cxrdata.errors import Rejected

cv2 = lazy_loader.load("cv2")  # imported on first use: a build's driver plans and never decodes

_REDUCED_FACTORS = (8, 4, 2)
# Default --max-pixels: ten times a large radiograph (4,280 x 4,280 = 18 M), far below what a forged
# header can claim (65,500 x 65,500 = 4.3 G pixels, a 4 GB allocation before the first row decodes).
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class Raster:
    """A decoded image and the size of the original it came from."""

    pixels: np.ndarray  # uint8, H x W
    original_width: int
    original_height: int


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker, without decoding; raises Rejected if absent."""
    i = 2
    n = len(data)
    if data[:2] != b"\xff\xd8":
        raise Rejected("image_corrupt", "not a JPEG (no SOI marker)")
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise Rejected("image_corrupt", "JPEG has no frame header (truncated?)")


def check_pixel_count(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse a header that claims more than ``max_pixels`` pixels (0: no limit), before decoding."""
    if max_pixels and width * height > max_pixels:
        raise Rejected("image_too_large", f"header claims {width}x{height} = {width * height / 1e6:,.0f} M pixels, "
                                          f"more than --max-pixels {max_pixels / 1e6:,.0f} M")


def ends_with_eoi(tail: bytes) -> bool:
    """Whether the last bytes of a JPEG hold its EOI marker (zero padding after it is tolerated)."""
    return tail.rstrip(b"\x00").endswith(b"\xff\xd9")


def decode_jpeg(data: bytes, max_side: int = 0, max_pixels: int = MAX_PIXELS) -> Raster:
    """Decode JPEG bytes to uint8 grayscale, at reduced scale when ``max_side`` allows it.

    ``max_side=0`` decodes at full size. Raises :class:`Rejected`: ``image_truncated`` (no EOI
    marker), ``image_too_large`` (see :func:`check_pixel_count`), ``image_corrupt`` (does not
    decode, or libjpeg reports corrupt or missing data anywhere in the entropy-coded segments).
    Pixels are returned exactly as stored: never inverted (MIMIC-CXR-JPG is display-ready, air
    dark) and never rotated by an EXIF orientation tag (the pixel grid must match the SOF size).
    """
    width, height = jpeg_size(data)
    check_pixel_count(width, height, max_pixels)
    if not ends_with_eoi(data[-4096:]):
        raise Rejected("image_truncated", "JPEG ends before its EOI marker")
    factor = next((f for f in _REDUCED_FACTORS if max_side and max(width, height) // f >= max_side), 1)
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_factor=factor, min_width=-(-width // factor),
                                        min_height=-(-height // factor), strict=True)
    except ValueError as exc:
        raise Rejected("image_corrupt", f"JPEG does not decode cleanly: {exc}") from None
    return Raster(pixels[:, :, 0], width, height)


def resize_longest_side(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so that the longest side is ``max_side`` (aspect kept, never enlarged; INTER_AREA).

    A large shrink first averages exact ``f``×``f`` blocks, with ``f`` the largest integer that
    divides both sides and keeps the image at least target size (OpenCV's fast integer path),
    then finishes with a fractional INTER_AREA. Because ``f`` divides the image exactly, every
    output pixel still covers the same source footprint as a one-step resize (no drift of the
    grid that boxes are drawn on); only the weights inside it differ, and by a grey level or so.
    It is several times faster on full-size radiographs.
    """
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if max_side <= 0 or longest <= max_side:
        return pixels
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    factor = _exact_block(width, height, size)
    if factor > 1:
        pixels = cv2.resize(pixels, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
        if pixels.shape[1] == size[0] and pixels.shape[0] == size[1]:
            return pixels
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def resize_shortest_side(pixels: np.ndarray, min_side: int) -> np.ndarray:
    """Shrink so that the shortest side is ``min_side`` (aspect kept, never enlarged), e.g. what a model trained on
    centre crops of "shortest side = N" images needs. The longest side is ``round(longest · min_side / shortest)``;
    :func:`resize_longest_side` then shrinks to it and the shortest side comes out as ``min_side`` exactly (its
    rounding error is below half a pixel)."""
    height, width = pixels.shape[:2]
    shortest, longest = min(height, width), max(height, width)
    if min_side <= 0 or shortest <= min_side:
        return pixels
    return resize_longest_side(pixels, round(longest * min_side / shortest))


def _exact_block(width: int, height: int, size: tuple[int, int]) -> int:
    """Largest integer ≥ 2 dividing both sides with the reduced image still ≥ ``size``; else 1."""
    for factor in range(min(width // size[0], height // size[1]), 1, -1):
        if width % factor == 0 and height % factor == 0:
            return factor
    return 1


def encode(pixels: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> bytes:
    """Encode uint8 grayscale as JPEG (``quality``) or lossless PNG."""
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise ValueError(f"unknown image encoding {fmt!r}")
    if not ok:
        raise Rejected("image_encode_failed", f"OpenCV could not encode a {pixels.shape} image as {fmt}")
    return buf.tobytes()
