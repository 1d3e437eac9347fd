"""8-bit JPEG rasters (MIMIC-CXR-JPG): size probe, reduced decode, no inversion, resize, encode."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from cxrdata.errors import Rejected
from cxrdata.imaging.raster import decode_jpeg, encode, jpeg_size, resize_longest_side


def gradient(height: int, width: int) -> np.ndarray:
    """Dark left (air), bright right: smooth, so JPEG round trips stay within a few levels."""
    return np.tile(np.linspace(10, 245, width), (height, 1)).astype(np.uint8)


def test_jpeg_size_matches_the_image() -> None:
    data = encode(gradient(300, 200))
    assert jpeg_size(data) == (200, 300)


def test_full_decode_keeps_values_and_never_inverts() -> None:
    pixels = gradient(64, 96)
    raster = decode_jpeg(encode(pixels, quality=100))
    assert raster.pixels.dtype == np.uint8 and raster.pixels.shape == (64, 96)
    assert np.abs(raster.pixels.astype(int) - pixels).max() <= 2
    assert raster.pixels[:, :5].mean() < 20 and raster.pixels[:, -5:].mean() > 235  # air stays dark


def test_reduced_decode_gives_the_scaled_size() -> None:
    data = encode(gradient(3000, 2500))
    for max_side, factor in [(0, 1), (2000, 1), (1500, 2), (700, 4), (256, 8), (64, 8)]:
        raster = decode_jpeg(data, max_side=max_side)
        assert raster.pixels.shape == (-(-3000 // factor), -(-2500 // factor)), max_side
        assert (raster.original_width, raster.original_height) == (2500, 3000)
        assert max(raster.pixels.shape) >= min(max_side, 3000)


def test_reduced_decode_agrees_with_full_decode_then_resize() -> None:
    y, x = np.mgrid[0:1024, 0:768]
    pixels = (128 + 100 * np.sin(x / 60) * np.cos(y / 80)).astype(np.uint8)
    data = encode(pixels)
    reduced = resize_longest_side(decode_jpeg(data, max_side=256).pixels, 256)
    full = resize_longest_side(decode_jpeg(data).pixels, 256)
    assert reduced.shape == full.shape == (256, 192)
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 1.5


def test_exif_orientation_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° CW to display"
    buffer = io.BytesIO()
    Image.fromarray(gradient(40, 80)).save(buffer, "JPEG", quality=95, exif=exif)
    raster = decode_jpeg(buffer.getvalue())
    assert raster.pixels.shape == (40, 80)  # the stored grid, as jpeg_size reports it
    assert raster.pixels[:, 0].mean() < raster.pixels[:, -1].mean()


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg_is_rejected(cut: float) -> None:
    data = encode(gradient(200, 200))
    with pytest.raises(Rejected) as caught:
        decode_jpeg(data[: int(len(data) * cut)])
    assert caught.value.reason in {"image_truncated", "image_corrupt"}


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0" + bytes(10)])
def test_not_a_jpeg_is_rejected(data: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        decode_jpeg(data)
    assert caught.value.reason == "image_corrupt"


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [
        ((3000, 2500), 512, (512, 427)),
        ((2500, 3000), 512, (427, 512)),
        ((1760, 2140), 512, (421, 512)),
        ((997, 631), 100, (100, 63)),
        ((100, 80), 512, (100, 80)),
        ((100, 80), 0, (100, 80)),
    ],
)
def test_resize_longest_side_sizes(shape: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert resize_longest_side(np.zeros(shape, np.uint8), max_side).shape == expected


def test_two_step_resize_matches_one_step_area() -> None:
    y, x = np.mgrid[0:3000, 0:2500]
    pixels = (128 + 100 * np.sin(x / 150) * np.cos(y / 200)).astype(np.uint8)
    fast = resize_longest_side(pixels, 512)
    exact = cv2.resize(pixels, (427, 512), interpolation=cv2.INTER_AREA)
    assert np.abs(fast.astype(int) - exact.astype(int)).max() <= 1


def test_resize_keeps_a_constant_image_constant_and_the_grid() -> None:
    assert (resize_longest_side(np.full((3000, 2500), 77, np.uint8), 512) == 77).all()
    pixels = np.zeros((3000, 2500), np.uint8)
    pixels[1000:1500, 500:1000] = 255  # centred at (1249.5, 749.5) in source pixels
    out = resize_longest_side(pixels, 512).astype(float)
    rows, cols = np.mgrid[0 : out.shape[0], 0 : out.shape[1]]
    centre = np.array([(rows * out).sum(), (cols * out).sum()]) / out.sum()
    scale = np.array([512 / 3000, 427 / 2500])
    assert np.abs(centre - ((np.array([1249.5, 749.5]) + 0.5) * scale - 0.5)).max() < 0.05


def test_encode_round_trips() -> None:
    pixels = gradient(32, 48)
    assert (cv2.imdecode(np.frombuffer(encode(pixels, "png"), np.uint8), cv2.IMREAD_UNCHANGED) == pixels).all()
    with pytest.raises(ValueError):
        encode(pixels, "webp")
