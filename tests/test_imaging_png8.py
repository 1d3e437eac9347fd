"""8-bit PNGs (ChestX-ray14) to one gray channel: exact for gray pictures saved with colour, noted otherwise."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrdata.errors import Rejected
from cxrdata.imaging.png8 import decode_png8, png_header
from cxrdata.imaging.stages import Png8ImageStage


def _png(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (40, 60), dtype=np.uint8)


def test_gray_and_gray_saved_as_colour_are_exact(gray: np.ndarray) -> None:
    for pixels, colour, notes in ((gray, "gray", []),
                                  (cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), "rgb", ["png_source_rgb"]),
                                  (cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA), "rgba", ["png_source_rgba"])):
        data = _png(pixels)
        assert png_header(data[:33]) == (60, 40, 8, colour)
        raster, found = decode_png8(data)
        assert np.array_equal(raster.pixels, gray) and found == notes
        assert (raster.original_width, raster.original_height) == (60, 40)


def test_colour_is_weighted_and_transparency_noted(gray: np.ndarray) -> None:
    bgr = np.stack([gray, gray // 2, 255 - gray], axis=-1)
    raster, notes = decode_png8(_png(bgr))
    assert np.array_equal(raster.pixels, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert notes == ["png_source_rgb", "png_colour_to_luma"]
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)
    bgra[0, 0, 3] = 10
    raster, notes = decode_png8(_png(bgra))
    assert np.array_equal(raster.pixels, gray) and notes == ["png_source_rgba", "png_alpha_ignored"]


def test_refused(gray: np.ndarray) -> None:
    with pytest.raises(Rejected, match="png_not_8bit"):
        decode_png8(_png(gray.astype(np.uint16) * 257))
    data = _png(gray)
    with pytest.raises(Rejected, match="image_truncated"):
        decode_png8(data[: len(data) // 2])
    with pytest.raises(Rejected, match="image_too_large"):
        decode_png8(data, max_pixels=100)


def test_stage_notes_and_sizes(gray: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)) + b"junk")
    record = Png8ImageStage(max_side=30, image_format="png").process({"_image_file": str(path)})
    assert record["_notes"] == ["png_source_rgba", "png_trailing_bytes"]
    assert (record["image_width"], record["image_height"], record["original_width"]) == (30, 20, 60)
    stored = cv2.imdecode(np.frombuffer(record["image"]["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored.ndim == 2 and stored.shape == (20, 30)
    probed = Png8ImageStage(image_format="path").process({"_image_file": str(path)})
    assert probed["image"] == {"bytes": None, "path": str(path.resolve())} and probed["_notes"] == ["png_source_rgba"]
    (tmp_path / "b.png").write_bytes(_png(gray))
    assert "_notes" not in Png8ImageStage(image_format="path").process({"_image_file": str(tmp_path / "b.png")})
