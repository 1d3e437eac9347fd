"""How each of the 8 pathologies looks on a synthetic frontal radiograph, drawn strictly inside its box.

Every effect is a smooth density change on a patch that covers the box, multiplied by a window that
falls to zero at the box edges: nothing leaks outside the box, so a box written to an annotation file
is exactly where the finding is. Pneumothorax and effusion also hide the lung markings they cover.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxrdata.boxes import Box

if TYPE_CHECKING:
    from cxrdata.sample.chest import Canvas

Array = np.ndarray
Rng = np.random.Generator
# (s, t, lateral, lung, rng) -> (density change, marking suppression); s, t in [0, 1] across the box,
# ``lateral`` = 0 at the box side nearest the chest wall, 1 at the side nearest the midline.
Effect = Callable[[Array, Array, Array, Array, Rng], tuple[Array, Array]]


def _ramp(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _window(s: np.ndarray, t: np.ndarray, edge: float = 0.12) -> np.ndarray:
    return _ramp(s / edge) * _ramp((1 - s) / edge) * _ramp(t / edge) * _ramp((1 - t) / edge)


def _blobs(s: np.ndarray, t: np.ndarray, rng: np.random.Generator, count: int, sigma: float) -> np.ndarray:
    """A few overlapping Gaussian blobs with centres well inside the box, peak normalised to 1."""
    field = np.zeros(np.broadcast_shapes(s.shape, t.shape), np.float32)
    for cs, ct in rng.uniform(0.3, 0.7, (count, 2)):
        ss, st = sigma * rng.uniform(0.8, 1.3, 2)
        field += np.exp(-((s - cs) ** 2 / (2 * ss**2) + (t - ct) ** 2 / (2 * st**2)))
    return np.clip(field / max(float(field.max()), 1e-6), 0.0, 1.0) ** 0.7


def _mottle(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 5) -> np.ndarray:
    """Smooth random field in [0, 1] (patchiness)."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _none(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, np.float32)


def _opacity(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    field = _blobs(s, t, rng, 4, 0.22) * (0.6 + 0.4 * _mottle(lung.shape, rng))
    return 0.24 * field * (0.3 + 0.7 * lung) * _window(s, t), _none(lung.shape)


def _pneumonia(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    field = _blobs(s, t, rng, 5, 0.18) * (0.35 + 0.65 * _mottle(lung.shape, rng, 6))
    return 0.42 * field * (0.3 + 0.7 * lung) * _window(s, t), _none(lung.shape)


def _consolidation(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    solid = np.clip(1.4 * _blobs(s, t, rng, 3, 0.26), 0.0, 1.0)  # dense, fairly homogeneous
    bronchi = np.zeros(lung.shape, np.float32)  # air bronchograms: thin dark branching lines
    h, w = lung.shape
    for _ in range(2):
        x, y, angle = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.3, 0.5), rng.uniform(0.8, 2.3)
        for step in range(3):
            nx, ny = x + math.cos(angle) * w * 0.12, y + math.sin(angle) * h * 0.12
            cv2.line(bronchi, (round(x), round(y)), (round(nx), round(ny)), 1.0, max(1, w // 70), cv2.LINE_AA)
            x, y, angle = nx, ny, angle + rng.choice([-0.35, 0.35]) * (step + 1) / 2
    bronchi = cv2.GaussianBlur(bronchi, (0, 0), max(0.6, w / 150))
    return (0.36 * solid - 0.1 * bronchi * solid) * (0.3 + 0.7 * lung) * _window(s, t), _none(lung.shape)


def _atelectasis(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    slope = math.tan(rng.uniform(-0.3, 0.3))
    band = np.exp(-(((t - 0.55) - slope * (s - 0.5)) / 0.17) ** 2)  # plate-like band
    field = np.maximum(band, 0.45 * _blobs(s, t, rng, 2, 0.25))
    return 0.3 * field * (0.3 + 0.7 * lung) * _window(s, t), _none(lung.shape)


def _effusion(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    meniscus = 0.06 + 0.7 * lateral**1.4  # fluid climbs highest along the chest wall
    fluid = _ramp((t - meniscus) / 0.25) * (1 - 0.4 * lateral)
    window = _window(s, t, 0.06)
    return 0.32 * fluid * (0.25 + 0.75 * lung) * window, fluid * window


def _pneumothorax(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    radius = np.sqrt(((1 - lateral) / 0.78) ** 2 + ((1 - t) / 0.82) ** 2)  # collapsed lung edge
    air = _ramp((radius - 1) / 0.05)
    window = _window(s, t, 0.08)
    pleura = np.exp(-(((radius - 1) / 0.018) ** 2))
    return (-0.12 * air + 0.08 * pleura) * lung * window, air * window


def _edema(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    perihilar = 0.45 + 0.55 * lateral
    field = perihilar * (0.7 + 0.3 * _mottle(lung.shape, rng, 8))
    return 0.22 * field * lung * _window(s, t, 0.08), _none(lung.shape)


def _cardiomegaly(s: Array, t: Array, lateral: Array, lung: Array, rng: Rng) -> tuple[Array, Array]:
    return _none(lung.shape), _none(lung.shape)  # drawn by the renderer as an enlarged heart


def _across(span: slice, start: float, stop: float) -> Array:
    """Pixel centres of ``span`` as a 0..1 position between ``start`` and ``stop``."""
    return np.clip((np.arange(span.start, span.stop, dtype=np.float32) + 0.5 - start) / (stop - start), 0, 1)


EFFECTS: dict[str, Effect] = {
    "Lung Opacity": _opacity,
    "Pneumonia": _pneumonia,
    "Consolidation": _consolidation,
    "Atelectasis": _atelectasis,
    "Pleural Effusion": _effusion,
    "Pneumothorax": _pneumothorax,
    "Edema": _edema,
    "Cardiomegaly": _cardiomegaly,
}


def draw(
    c: Canvas, findings: Sequence[tuple[str, Box]], lung: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Density change and lung-marking suppression (both h x w) for (pathology, canonical box) pairs."""
    delta, suppress = c.zeros(), c.zeros()
    for name, box in findings:
        if name not in EFFECTS:
            raise ValueError(f"no synthetic look for pathology {name!r}; known: {sorted(EFFECTS)}")
        x0, y0, x1, y1 = box[0] * c.width, box[1] * c.height, box[2] * c.width, box[3] * c.height
        cols = slice(max(0, math.floor(x0)), min(c.width, math.ceil(x1)))
        rows = slice(max(0, math.floor(y0)), min(c.height, math.ceil(y1)))
        if cols.stop - cols.start < 2 or rows.stop - rows.start < 2:
            continue
        s = _across(cols, x0, x1)[None, :]
        t = _across(rows, y0, y1)[:, None]
        centre_u = ((x0 + x1) / 2 - c.frame_px[0]) / c.side
        lateral = s if centre_u < 0.5 else 1 - s
        d, m = EFFECTS[name](s, t, lateral, lung[rows, cols], rng)
        delta[rows, cols] += d
        suppress[rows, cols] = np.maximum(suppress[rows, cols], m)
    return delta, suppress
