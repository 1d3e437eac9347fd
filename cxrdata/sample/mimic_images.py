"""The images of the synthetic MIMIC-CXR-JPG sample: which get a real full size (MS-CXR images first), the
small realistic sizes of the rest, the findings placed on every frontal image (and the MS-CXR boxes around
them), and the JPEG files, rendered in parallel from per-image random streams."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cxrdata.boxes import Box, from_xyxy_pixels
from cxrdata.imaging.raster import encode
from cxrdata.sample.chest import ChestLayout, render_chest, render_lateral
from cxrdata.sample.mimic_plan import FRONTAL, Rng, Study, StudyImage, config, pick
from cxrdata.sample.mscxr import MscxrBox


def choose_images(rng: Rng, studies: list[Study], full_size_images: int) -> tuple[set[str], list[StudyImage]]:
    """(MS-CXR dicom_ids: the first frontal image of each study with findings, full-size images)."""
    images = [im for s in studies for im in s.images]
    if full_size_images > len(images):
        raise ValueError(f"full_size_images={full_size_images} but the sample has only {len(images)} images")
    mscxr = [next(im for im in s.images if im.view in FRONTAL) for s in studies
             if s.positives and any(im.view in FRONTAL for im in s.images)]
    ids = {im.dicom_id for im in mscxr}
    others = [im for im in images if im.dicom_id not in ids]
    order = [mscxr[k] for k in rng.permutation(len(mscxr))]
    order += [others[k] for k in rng.permutation(len(others))]
    return ids, order[:full_size_images]


def choose_sizes(rng: Rng, studies: list[Study], full: list[StudyImage]) -> None:
    """Small realistic-aspect sizes per study; real full sizes for the images in ``full``."""
    cfg = config()
    low, high = cfg["small_side"]
    for study in studies:
        width, height = pick(rng, cfg["image_sizes"])
        scale = rng.uniform(low, high) / max(width, height)
        for im in study.images:
            im.width, im.height = round(width * scale), round(height * scale)
    for k, im in enumerate(full):
        im.width, im.height = cfg["full_sizes"][k % len(cfg["full_sizes"])]


def _pixel_box(layout: ChestLayout, frame_box: Box) -> tuple[int, int, int, int]:
    """Chest-frame box -> integer xyxy pixels, clipped to the image."""
    x0, y0, x1, y1 = layout.to_image(frame_box)
    w, h = layout.width, layout.height
    return (max(0, math.floor(x0 * w)), max(0, math.floor(y0 * h)),
            min(w, math.ceil(x1 * w)), min(h, math.ceil(y1 * h)))


def place_findings(studies: list[Study], mscxr: set[str]) -> list[MscxrBox]:
    """Put every positive finding on every frontal image of its study; MS-CXR rows for ``mscxr``."""
    rows = []
    for study in studies:
        for im in (im for im in study.images if im.view in FRONTAL):
            layout = ChestLayout.fit(im.width, im.height)
            for finding, frame_boxes in zip(study.positives, study.frame_boxes, strict=True):
                for frame_box in frame_boxes:
                    x0, y0, x1, y1 = _pixel_box(layout, frame_box)
                    drawn = from_xyxy_pixels(x0, y0, x1, y1, im.width, im.height)
                    im.findings.append((finding.pathology, drawn))
                    if im.dicom_id in mscxr:
                        path, xywh = f"{study.folder}/{im.dicom_id}.jpg", (x0, y0, x1 - x0, y1 - y0)
                        rows.append(MscxrBox(im.dicom_id, finding.pathology, finding.phrase, path, xywh,
                                             im.width, im.height, study.mscxr_split))
    return rows


def _jpeg(im: StudyImage, seed: int, index: int) -> bytes:
    """The file content of one image; its own random stream, so images can render in parallel."""
    rng = np.random.default_rng([seed, 1, index])
    if im.defect == "corrupt":
        data = bytearray(rng.bytes(int(rng.integers(2048, 8192))))
        data[0] = 0x00  # never a JPEG start-of-image marker
        return bytes(data)
    if im.view in FRONTAL:
        pixels = render_chest(im.width, im.height, rng, im.findings)
    else:
        pixels = render_lateral(im.width, im.height, rng)
    data = encode(pixels, "jpeg", 95)
    return data[: len(data) // 2] if im.defect == "truncated" else data


def write_images(root: Path, studies: list[Study], seed: int) -> list[Path]:
    jobs = [(root / s.folder / f"{im.dicom_id}.jpg", im) for s in studies for im in s.images]
    for folder in sorted({path.parent for path, _ in jobs}):
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as workers:
        contents = workers.map(lambda k: _jpeg(jobs[k][1], seed, k), range(len(jobs)))
        for (path, _), data in zip(jobs, contents, strict=True):
            path.write_bytes(data)
    return [path for path, _ in jobs]
