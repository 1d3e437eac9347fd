"""16-bit PNG (PadChest-GR): full-depth read, windowing values, rejects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrdata.errors import Rejected
from cxrdata.imaging.png16 import decode_png16, window_bounds


def png(pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", pixels)
    assert ok
    return buffer.tobytes()


def test_minmax_maps_known_values_to_known_outputs() -> None:
    pixels = np.array([[1000, 1000 + 25700 // 2, 26700], [1000, 1000 + 257, 26700]], np.uint16)
    raster = decode_png16(png(pixels), window="minmax")
    # 1000 → 0, 26700 → 255, a step of 25700/255 = 100.78 per grey level
    assert raster.pixels.tolist() == [[0, 128, 255], [0, 3, 255]]
    assert (raster.original_width, raster.original_height) == (3, 2)


def test_full_depth_is_kept_not_divided_by_255() -> None:
    # Values that differ only in the low byte would collapse under an 8-bit read.
    pixels = np.array([[40000, 40040, 40080, 40120]], np.uint16)
    assert decode_png16(png(pixels), window="minmax").pixels.tolist() == [[0, 85, 170, 255]]


def test_percentile_window_clips_outliers() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(10000, 20001, (400, 300)).astype(np.uint16)
    pixels[:2, :2] = 65535  # a burned-in marker: 4 pixels of 120,000
    pixels[-2:, -2:] = 0
    raster = decode_png16(png(pixels))  # default: 0.5–99.5 percentiles
    lo, hi = window_bounds(pixels, "percentile")
    assert 10000 <= lo < 10200 and 19800 < hi <= 20000
    assert raster.pixels[0, 0] == 255 and raster.pixels[-1, -1] == 0
    body = raster.pixels[10:-10, 10:-10]
    assert body.min() == 0 and body.max() == 255 and 120 < body.mean() < 135  # contrast not wasted on outliers
    minmax = decode_png16(png(pixels), window="minmax").pixels[10:-10, 10:-10]
    assert np.ptp(minmax) < 50  # what the outliers do without clipping


def test_percentile_on_subsample_matches_full_percentile() -> None:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:1500, 0:1200]
    pixels = (20000 + 8000 * np.sin(x / 90) * np.cos(y / 120) + rng.normal(0, 300, x.shape)).astype(np.uint16)
    lo, hi = window_bounds(pixels, "percentile", 1, 99)
    full_lo, full_hi = np.percentile(pixels, [1, 99])
    assert abs(lo - full_lo) < 100 and abs(hi - full_hi) < 100  # < 1 grey level of a 16k-wide window


def test_max_side_and_original_size(tmp_path: Path) -> None:
    pixels = np.tile(np.linspace(0, 60000, 300, dtype=np.uint16), (200, 1))
    path = tmp_path / "image.png"
    path.write_bytes(png(pixels))
    raster = decode_png16(path, max_side=150, window="minmax")
    assert raster.pixels.shape == (100, 150) and raster.pixels.dtype == np.uint8
    assert (raster.original_width, raster.original_height) == (300, 200)
    assert raster.pixels[:, 0].max() <= 1 and raster.pixels[:, -1].min() >= 254  # never inverted


def test_8_bit_png_is_rejected_unless_allowed() -> None:
    pixels = np.array([[10, 110, 210]], np.uint8)
    with pytest.raises(Rejected) as caught:
        decode_png16(png(pixels))
    assert caught.value.reason == "png_not_16bit"
    assert decode_png16(png(pixels), window="minmax", expect_16bit=False).pixels.tolist() == [[0, 128, 255]]


def test_truncated_and_corrupt_files_are_rejected() -> None:
    data = png(np.random.default_rng(2).integers(0, 65535, (64, 64)).astype(np.uint16))
    for broken, reason in [(data[: len(data) // 2], "image_truncated"), (b"GIF89a" + data, "image_corrupt")]:
        with pytest.raises(Rejected) as caught:
            decode_png16(broken)
        assert caught.value.reason == reason
    # a damaged chunk in the middle, with the end intact
    damaged = data[:100] + bytes(200) + data[300:]
    with pytest.raises(Rejected) as caught:
        decode_png16(damaged)
    assert caught.value.reason == "image_corrupt"


def test_unknown_window_is_an_error() -> None:
    with pytest.raises(ValueError):
        decode_png16(png(np.zeros((2, 2), np.uint16)), window="gamma")  # type: ignore[arg-type]
