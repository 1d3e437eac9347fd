"""Fault suite, the image side: damaged files that still look whole must become rejects, never images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cxrdata_testing import read_records, read_rejects
from faults import assert_ok, cxrdata, linked_copy, replace

from cxrdata.api import bundled_root
from cxrdata.errors import Rejected
from cxrdata.imaging.png16 import png_layout
from cxrdata.imaging.raster import decode_jpeg, encode, jpeg_size

pytestmark = pytest.mark.slow


def gradient_jpeg(height: int = 600, width: int = 500) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    return encode(((x * 3 + y * 5) % 256).astype(np.uint8), quality=95)


def zero_middle(data: bytes) -> bytes:
    """Same size, markers intact: a tenth of the entropy-coded data zeroed (a bad disk block)."""
    damaged = bytearray(data)
    start, length = len(data) // 2, len(data) // 10
    damaged[start : start + length] = bytes(length)
    return bytes(damaged)


def claim_size(data: bytes, width: int, height: int) -> bytes:
    """The frame header rewritten to claim another size (a forged or corrupted header)."""
    at = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    forged = bytearray(data)
    forged[at + 5 : at + 7] = height.to_bytes(2, "big")
    forged[at + 7 : at + 9] = width.to_bytes(2, "big")
    return bytes(forged)


@pytest.mark.parametrize("max_side", [0, 256])
def test_a_jpeg_with_a_zeroed_middle_is_rejected(max_side):
    with pytest.raises(Rejected) as caught:
        decode_jpeg(zero_middle(gradient_jpeg()), max_side=max_side)
    assert caught.value.reason == "image_corrupt" and "Corrupt JPEG data" in caught.value.detail


def test_a_header_claiming_65500_squared_is_refused_before_decoding():
    forged = claim_size(gradient_jpeg(), 65500, 65500)
    assert jpeg_size(forged) == (65500, 65500)
    with pytest.raises(Rejected) as caught:
        decode_jpeg(forged)
    assert caught.value.reason == "image_too_large" and "65500x65500" in caught.value.detail


def written_images(root: Path, out: Path, dataset: str, config: str) -> list[Path]:
    """The source files of the records a clean build of ``root`` writes (so a damaged one can only be
    rejected for its damage)."""
    assert_ok(cxrdata("build", dataset, "--root", root, "--out", out, "--image-format", "path", "--workers", "1",
                      "--quiet", "--max-reject-share", "1"))
    records = read_records(out, config).values()
    return sorted(Path(r["image"] if isinstance(r["image"], str) else r["image"]["path"]) for r in records)


@pytest.mark.parametrize("image_format", ["jpeg", "path"])
def test_damaged_jpegs_in_a_build_are_rejects(mimic_sample, tmp_path, image_format):
    root = linked_copy(mimic_sample.root, tmp_path / "mimic")
    zeroed, forged = written_images(root, tmp_path / "clean", "mimic", "mimic")[:2]
    replace(zeroed, zero_middle(zeroed.read_bytes()))
    replace(forged, claim_size(forged.read_bytes(), 65500, 65500))
    out = tmp_path / "out"
    assert_ok(cxrdata("build", "mimic", "--root", root, "--out", out, "--image-size", "64", "--image-format",
                      image_format, "--workers", "1", "--quiet"))
    rejects = read_rejects(out, "mimic")
    assert rejects[forged.stem] == "image_too_large"  # path mode too: nothing decodes a 4 G-pixel header
    if image_format == "jpeg":
        assert rejects[zeroed.stem] == "image_corrupt"
    else:  # path mode reads only the header and the end marker, both intact
        assert zeroed.stem in read_records(out, "mimic")


def test_png_trailing_bytes_are_kept_and_counted_a_cut_png_is_truncated(tmp_path):
    root = linked_copy(bundled_root("padchest-gr"), tmp_path / "pgr")
    trailing, cut = written_images(root, tmp_path / "clean", "padchest-gr", "padchest-gr")[:2]
    replace(trailing, trailing.read_bytes() + b"\0" * 100 + b"junk after IEND")
    assert png_layout(trailing.read_bytes()).trailing_bytes == 115
    replace(cut, cut.read_bytes()[: len(cut.read_bytes()) * 2 // 3])
    out = tmp_path / "out"
    assert_ok(cxrdata("build", "padchest-gr", "--root", root, "--out", out, "--image-size", "64", "--workers", "1",
                      "--quiet", "--max-reject-share", "1"))
    records = {r["image_id"]: r for r in read_records(out, "padchest-gr").values()}
    assert trailing.name in records
    rejects = read_rejects(out, "padchest-gr")
    assert [reason for record, reason in rejects.items() if cut.name in record] == ["image_truncated"]
    notes = json.loads((out / "manifest.json").read_text())["configs"]["padchest-gr"]["counts"]["notes"]
    assert notes["png_trailing_bytes"] == 1
