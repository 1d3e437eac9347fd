"""Diagonal 2D Gaussians from boxes, and their heatmaps.

A Gaussian is stored as the row ``(mu_x, mu_y, sigma_x, sigma_y)`` in the units of a ``grid`` x ``grid``
map onto which canonical boxes are stretched (``grid = 512`` for the LUT, ``grid = 1`` for plain
normalised coordinates). Per axis, from a box: ``mu = (min + max) / 2`` and ``sigma = (max - min) /
divisor``; ``divisor = 6`` in the LUT (±3σ inside the box), ``3`` for the Oracle heatmap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

LUT_SIGMA_DIVISOR = 6.0
ORACLE_SIGMA_DIVISOR = 3.0

# Smallest sigma, as a fraction of the grid side: keeps a zero-width box from dividing by zero.
MIN_SIGMA_FRACTION = 1e-4
# 1D profile values below this are set to 0, so products of two are 0 or normal float32 numbers
# (arithmetic on subnormal floats is slow on common CPUs).
_PROFILE_FLOOR = 1e-18

Combine = Literal["sum", "max"]


@dataclass(frozen=True)
class Gaussian2D:
    """One diagonal 2D Gaussian in grid units."""

    mu_x: float
    mu_y: float
    sigma_x: float
    sigma_y: float

    @classmethod
    def from_box(cls, box: Sequence[float], grid: float = 512,
                 divisor: float = LUT_SIGMA_DIVISOR) -> Gaussian2D:
        """Canonical box -> Gaussian on a ``grid`` x ``grid`` map."""
        return cls(*(float(v) for v in box_params(box, grid, divisor)[0]))

    def as_array(self) -> NDArray[np.float64]:
        """The row ``(mu_x, mu_y, sigma_x, sigma_y)``."""
        return np.array([self.mu_x, self.mu_y, self.sigma_x, self.sigma_y], dtype=np.float64)


def box_params(boxes: ArrayLike, grid: float = 512,
               divisor: float = LUT_SIGMA_DIVISOR) -> NDArray[np.float64]:
    """Canonical boxes ``(N, 4)`` (or one box) -> Gaussian rows ``(N, 4)`` in grid units, vectorised."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * grid
    out = np.empty_like(b)
    out[:, :2] = (b[:, :2] + b[:, 2:]) * 0.5
    out[:, 2:] = np.maximum((b[:, 2:] - b[:, :2]) / divisor, MIN_SIGMA_FRACTION * grid)
    return out


def params_to_boxes(params: ArrayLike, grid: float = 512,
                    divisor: float = LUT_SIGMA_DIVISOR) -> NDArray[np.float64]:
    """Inverse of :func:`box_params`: Gaussian rows -> canonical boxes ``mu ∓ divisor/2 · sigma``."""
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    half = p[:, 2:] * (divisor / 2)
    return np.concatenate([p[:, :2] - half, p[:, :2] + half], axis=1) / grid


def _axis(mu: NDArray, sigma: NDArray, n: int, grid: float) -> NDArray[np.float64]:
    """``(K, n)`` unnormalised 1D Gaussians sampled at the pixel centres of an ``n``-pixel axis."""
    centres = (np.arange(n, dtype=np.float64) + 0.5) * (grid / n)
    g = np.exp(-0.5 * ((centres[None, :] - mu[:, None]) / sigma[:, None]) ** 2)
    g[g < _PROFILE_FLOOR] = 0.0
    return g


def render(
    params: ArrayLike,
    height: int,
    width: int,
    grid: float = 512,
    combine: Combine = "sum",
    normalise: bool = True,
) -> NDArray[np.float32]:
    """Heatmap ``(height, width)`` of one Gaussian or a mixture, the ``grid`` square stretched onto it.

    Each component has peak 1 before combining; ``combine="sum"`` adds the components (the LUT's
    bilateral mixtures), ``"max"`` takes their pixelwise maximum. ``normalise`` divides by the peak so
    the map lies in [0, 1]. Separable: each component is an outer product of two 1D profiles.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    if combine not in ("sum", "max"):
        raise ValueError(f"combine must be 'sum' or 'max', got {combine!r}")
    if len(p) == 0:
        return np.zeros((height, width), dtype=np.float32)
    gx = _axis(p[:, 0], p[:, 2], width, grid).astype(np.float32)
    gy = _axis(p[:, 1], p[:, 3], height, grid).astype(np.float32)
    heat = np.multiply(gy[0][:, None], gx[0][None, :])
    if len(p) > 1:
        term = np.empty_like(heat)
        merge = np.add if combine == "sum" else np.maximum
        for k in range(1, len(p)):
            np.multiply(gy[k][:, None], gx[k][None, :], out=term)
            merge(heat, term, out=heat)
    if normalise:
        peak = heat.max(initial=0.0)
        if peak > 0:
            heat /= peak
    return heat


def render_boxes(
    boxes: ArrayLike,
    height: int,
    width: int,
    divisor: float = LUT_SIGMA_DIVISOR,
    combine: Combine = "sum",
) -> NDArray[np.float32]:
    """Heatmap of the Gaussians of canonical ``boxes`` on a ``height`` x ``width`` image."""
    return render(box_params(boxes, 1.0, divisor), height, width, grid=1.0, combine=combine)
