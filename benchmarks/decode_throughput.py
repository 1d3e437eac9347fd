"""Decode throughput of the imaging layer, per core (one process, OpenCV single-threaded).

Run by hand from the repo root (or with cxrdata installed):
``PYTHONPATH=. python benchmarks/decode_throughput.py [--n 5] [--width 2500] [--height 3000]``.
It writes synthetic chest-like inputs (smooth anatomy-like gradients + noise, so that the
compressed sizes are realistic) to a temporary directory and prints images/s for:

* DICOM, 12 bits stored in 16: uncompressed, RLE Lossless, JPEG 2000 Lossless (and JPEG-LS when
  an encoder is installed), at full size and resized to ``--max-side``;
* 16-bit PNG (PadChest-GR), percentile and min–max windowing;
* 8-bit JPEG q95 (MIMIC-CXR-JPG): full decode + resize vs reduced-scale (DCT) decode + resize.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_encoder
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from cxrdata.imaging.dicom import decode_dicom
from cxrdata.imaging.png16 import decode_png16
from cxrdata.imaging.raster import decode_jpeg, encode, resize_longest_side


def chest_like(width: int, height: int, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A smooth radiograph-like uint16 image: dark air, bright body, darker lungs, a spine."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width - 0.5, y / height - 0.5
    body = np.clip(1.2 - (u / 0.42) ** 2 - (v / 0.55) ** 2, 0, 1) ** 0.5
    lungs = sum(np.clip(1 - ((u - cx) / 0.15) ** 2 - ((v + 0.05) / 0.3) ** 2, 0, 1) for cx in (-0.17, 0.17))
    spine = np.exp(-((u / 0.04) ** 2)) * (body > 0)
    image = 0.08 + 0.75 * body - 0.35 * lungs + 0.2 * spine + 0.05 * np.sin(9 * v) * body
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    top = (1 << bits) - 1
    return np.clip(image * top, 0, top).astype(np.uint16)


def write_dicom(path: Path, pixels: np.ndarray, syntax: str) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = pixels.tobytes()
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax, pixels)
    ds.save_as(path, enforce_file_format=True)


def rate(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(images/s, ms/image) over ``n`` calls after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    seconds = (time.perf_counter() - start) / n
    return 1.0 / seconds, 1000.0 * seconds


def report(label: str, fn: Callable[[], object], n: int, size: int | None = None) -> None:
    per_s, ms = rate(fn, n)
    extra = f"   file {size / 1e6:6.2f} MB" if size is not None else ""
    print(f"  {label:<44} {per_s:7.2f} img/s  {ms:8.1f} ms/img{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="timed repetitions per case")
    parser.add_argument("--width", type=int, default=2500)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--max-side", type=int, default=512)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    n, side = args.n, args.max_side
    pixels12 = chest_like(args.width, args.height)
    print(f"synthetic {args.width}x{args.height}, one process, cv2 threads=1, n={n}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("DICOM (12 bits stored / 16 allocated, window from header)")
        syntaxes = [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless, JPEGLSLossless]
        for syntax in syntaxes:
            if syntax != ExplicitVRLittleEndian and not get_encoder(syntax).is_available:
                print(f"  {syntax.name:<44} skipped: no encoder installed")
                continue
            path = root / f"{syntax.name.split()[0]}.dcm"
            write_dicom(path, pixels12, syntax)
            size = path.stat().st_size
            report(f"{syntax.name[:34]} full", lambda p=path: decode_dicom(p), n, size)
            report(f"{syntax.name[:34]} -> {side}", lambda p=path: decode_dicom(p, max_side=side), n)

        print("16-bit PNG (PadChest-GR)")
        png = root / "image.png"
        png.write_bytes(cv2.imencode(".png", pixels12 << 4)[1].tobytes())
        size = png.stat().st_size
        report("percentile window, full", lambda: decode_png16(png), n, size)
        report(f"percentile window -> {side}", lambda: decode_png16(png, max_side=side), n)
        report("minmax window, full", lambda: decode_png16(png, window="minmax"), n)

        print("8-bit JPEG q95 (MIMIC-CXR-JPG)")
        jpeg = encode((pixels12 >> 4).astype(np.uint8), "jpeg", 95)
        report("full decode", lambda: decode_jpeg(jpeg), n, len(jpeg))
        report(f"full decode + resize {side}", lambda: resize_longest_side(decode_jpeg(jpeg).pixels, side), n)
        report(
            f"reduced decode + resize {side}",
            lambda: resize_longest_side(decode_jpeg(jpeg, max_side=side).pixels, side),
            n,
        )


if __name__ == "__main__":
    main()
