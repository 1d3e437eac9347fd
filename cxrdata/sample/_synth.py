"""Small deterministic building blocks shared by the VinDr, PadChest-GR and ImaGenome sample writers.

Ids, image sizes, boxes inside a region, and the chest picture + anatomy boxes (helper-1's
``cxrdata.sample.chest`` when it is present, a small built-in stand-in otherwise).
"""

from __future__ import annotations

import string

import cv2
import numpy as np

Box = tuple[float, float, float, float]

_ALNUM = np.array(list(string.ascii_lowercase + string.digits))

# Stand-in anatomy (canonical fractions of a frontal PA image; patient's right = image left).
_FALLBACK_ANATOMY: dict[str, Box] = {
    "right lung": (0.12, 0.14, 0.48, 0.82),
    "right upper lung zone": (0.14, 0.16, 0.46, 0.38),
    "right mid lung zone": (0.12, 0.38, 0.47, 0.58),
    "right lower lung zone": (0.12, 0.58, 0.48, 0.80),
    "right hilar structures": (0.33, 0.38, 0.46, 0.55),
    "right apical zone": (0.18, 0.12, 0.42, 0.22),
    "right costophrenic angle": (0.10, 0.72, 0.22, 0.84),
    "right hemidiaphragm": (0.12, 0.74, 0.48, 0.86),
    "left lung": (0.52, 0.14, 0.88, 0.84),
    "left upper lung zone": (0.54, 0.16, 0.86, 0.38),
    "left mid lung zone": (0.53, 0.38, 0.88, 0.58),
    "left lower lung zone": (0.52, 0.58, 0.88, 0.82),
    "left hilar structures": (0.54, 0.38, 0.67, 0.55),
    "left apical zone": (0.58, 0.12, 0.82, 0.22),
    "left costophrenic angle": (0.78, 0.74, 0.90, 0.86),
    "left hemidiaphragm": (0.52, 0.76, 0.88, 0.88),
    "trachea": (0.46, 0.05, 0.54, 0.34),
    "spine": (0.44, 0.05, 0.56, 0.95),
    "right clavicle": (0.14, 0.12, 0.47, 0.22),
    "left clavicle": (0.53, 0.12, 0.86, 0.22),
    "aortic arch": (0.50, 0.26, 0.62, 0.36),
    "mediastinum": (0.36, 0.20, 0.66, 0.78),
    "upper mediastinum": (0.40, 0.20, 0.60, 0.40),
    "svc": (0.40, 0.26, 0.48, 0.44),
    "cardiac silhouette": (0.36, 0.44, 0.70, 0.78),
    "cavoatrial junction": (0.40, 0.46, 0.48, 0.54),
    "right atrium": (0.36, 0.52, 0.48, 0.74),
    "carina": (0.47, 0.32, 0.53, 0.38),
    "abdomen": (0.10, 0.86, 0.90, 0.99),
    "right cardiophrenic angle": (0.36, 0.70, 0.44, 0.78),
    "left cardiophrenic angle": (0.62, 0.72, 0.70, 0.80),
    "left cardiac silhouette": (0.50, 0.44, 0.70, 0.78),
    "right cardiac silhouette": (0.36, 0.44, 0.50, 0.78),
    "descending aorta": (0.52, 0.30, 0.60, 0.76),
    "left upper abdomen": (0.52, 0.86, 0.90, 0.99),
    "right upper abdomen": (0.10, 0.86, 0.48, 0.99),
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
    """ImaGenome bbox_name -> canonical box for an image of this size."""
    try:
        from cxrdata.sample.chest import anatomy_boxes
    except ImportError:
        return dict(_FALLBACK_ANATOMY)
    return {name: tuple(float(v) for v in box) for name, box in anatomy_boxes(width, height).items()}


def chest(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth chest-like picture as float32 in [0, 1], bright = dense (MONOCHROME2 sense)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    img = 0.55 + 0.25 * v  # soft tissue, denser towards the abdomen
    for cx in (0.30, 0.70):  # lungs: dark ellipses
        lung = ((u - cx) / 0.18) ** 2 + ((v - 0.48) / 0.34) ** 2
        img = img - 0.4 * np.clip(1.0 - lung, 0.0, 1.0) ** 0.5
    heart = ((u - 0.55) / 0.16) ** 2 + ((v - 0.62) / 0.15) ** 2
    img = img + 0.3 * np.clip(1.0 - heart, 0.0, 1.0)
    img = img + 0.25 * np.exp(-(((u - 0.5) / 0.05) ** 2))  # spine / mediastinum
    img = img + 0.04 * rng.standard_normal((height, width)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), max(1.0, width / 200))
    low, high = float(img.min()), float(img.max())
    return ((img - low) / (high - low)).astype(np.float32)
