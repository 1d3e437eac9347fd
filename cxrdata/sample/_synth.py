"""Small deterministic building blocks shared by the VinDr, PadChest-GR and ImaGenome sample writers.

Ids, image sizes, boxes inside a region, and the chest picture + anatomy boxes from
:mod:`cxrdata.sample.chest` (the renderer shared with the MIMIC sample).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from cxrdata.sample.chest import anatomy_boxes, render_chest

Box = tuple[float, float, float, float]

_ALNUM = np.array(list(string.ascii_lowercase + string.digits))

# Dataset finding names -> the renderer's pathology names (cxrdata.sample.lesions.EFFECTS).
RENDERED: dict[str, str] = {
    "Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Consolidation": "Consolidation",
    "Edema": "Edema", "Lung Opacity": "Lung Opacity", "Infiltration": "Lung Opacity",
    "Pleural effusion": "Pleural Effusion", "Pneumothorax": "Pneumothorax",
    "pneumonia": "Pneumonia", "laminar atelectasis": "Atelectasis", "cardiomegaly": "Cardiomegaly",
    "costophrenic angle blunting": "Pleural Effusion", "alveolar pattern": "Consolidation",
}


def hex_id(rng: np.random.Generator, length: int) -> str:
    """Lowercase hexadecimal id of ``length`` characters."""
    return rng.bytes((length + 1) // 2).hex()[:length]


def digit_id(rng: np.random.Generator, length: int) -> str:
    """A decimal id of ``length`` digits with no leading zero (PadChest Study/Patient ids)."""
    digits = rng.integers(0, 10, size=length)
    digits[0] = rng.integers(1, 10)
    return "".join(str(int(d)) for d in digits)


def alnum(rng: np.random.Generator, length: int) -> str:
    """Lowercase letters and digits."""
    return "".join(str(c) for c in rng.choice(_ALNUM, size=length))


def image_size(rng: np.random.Generator, full_size: bool) -> tuple[int, int]:
    """(width, height): portrait or square, 256-512 px by default, 2,000-3,056 px at full size."""
    low, high = (2000, 3056) if full_size else (256, 512)
    height = int(rng.integers(low + (high - low) // 4, high + 1))
    width = round(float(height * rng.uniform(0.78, 1.0)))
    return width, height


def sub_box(rng: np.random.Generator, region: Box) -> Box:
    """A box inside ``region`` covering 40-90% of its width and height."""
    x0, y0, x1, y1 = region
    fw, fh = rng.uniform(0.4, 0.9, 2)
    w, h = (x1 - x0) * fw, (y1 - y0) * fh
    left = x0 + rng.uniform(0, (x1 - x0) - w)
    top = y0 + rng.uniform(0, (y1 - y0) - h)
    return (float(left), float(top), float(left + w), float(top + h))


def anatomy(width: int, height: int) -> dict[str, Box]:
    """ImaGenome bbox_name -> canonical box for a frontal image of this size (the renderer's anatomy)."""
    return {name: tuple(float(v) for v in box) for name, box in anatomy_boxes(width, height).items()}


def chest(
    width: int, height: int, rng: np.random.Generator, findings: Sequence[tuple[str, Box]] = ()
) -> np.ndarray:
    """A chest radiograph as float32 in [0, 1), bright = dense (MONOCHROME2 sense).

    ``findings``: (pathology, canonical box); names the renderer knows (:data:`RENDERED`) are drawn
    in their box, others only exist in the labels. The 8-bit picture is dithered so that deeper
    bit depths get more than 256 distinct values.
    """
    drawn = [(RENDERED[name], box) for name, box in findings if name in RENDERED]
    picture = render_chest(width, height, rng, findings=drawn).astype(np.float32)
    return ((picture + rng.uniform(0.0, 1.0, picture.shape).astype(np.float32)) / 256.0).astype(np.float32)
