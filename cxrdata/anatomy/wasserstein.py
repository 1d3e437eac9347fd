"""Nearest LUT location of a box by the squared 2-Wasserstein distance (seed 003, appendix B, eq. 7).

Between diagonal Gaussians ``W2² = |mu1 - mu2|² + |sigma1 - sigma2|²`` (the general formula's trace term
reduces to this when both covariances are diagonal). Distances are in squared grid units of the LUT.

Ties: among exactly equal distances the candidate listed first wins, i.e. the lowest index in
vocabulary order (so "left lower" beats "left pleural" and "left base", which share its Gaussian, and
"left middle" beats "lingular").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cxrdata.anatomy.gaussian import box_params
from cxrdata.anatomy.lut import GaussianLUT

# Rows per block of the N x K distance matrix: small enough to stay in cache, large enough to amortise.
DEFAULT_CHUNK = 8192


def w2_squared(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Squared W2 between diagonal Gaussian rows ``(..., 4)``; broadcasts like numpy."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.einsum("...i,...i->...", d, d)


def nearest(
    params: ArrayLike, table: ArrayLike, chunk: int = DEFAULT_CHUNK
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For each Gaussian row of ``params (N, 4)``: the index of the nearest row of ``table (K, 4)``, its W2².

    Vectorised over blocks of ``chunk`` rows, so memory stays ``O(chunk · K)`` whatever ``N``.
    Ties go to the lowest table index.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    q = np.asarray(table, dtype=np.float64).reshape(-1, 4)
    if len(q) == 0:
        raise ValueError("nearest: the table of candidate Gaussians is empty")
    n = len(p)
    index = np.empty(n, dtype=np.intp)
    dist = np.empty(n, dtype=np.float64)
    qt = np.ascontiguousarray(q.T)
    for start in range(0, n, chunk):
        block = p[start:start + chunk]
        d = np.subtract.outer(block[:, 0], qt[0])
        d *= d
        for j in range(1, 4):
            t = np.subtract.outer(block[:, j], qt[j])
            t *= t
            d += t
        best = d.argmin(axis=1)  # first minimum on ties
        index[start:start + len(block)] = best
        dist[start:start + len(block)] = d[np.arange(len(block)), best]
    return index, dist


def match_boxes(
    boxes: ArrayLike, lut: GaussianLUT, include_mixtures: bool = False, chunk: int = DEFAULT_CHUNK
) -> tuple[list[str], NDArray[np.float64]]:
    """Nearest location term and W2² for every canonical box ``(N, 4)``.

    Each box becomes a Gaussian on the LUT's grid with the LUT's sigma divisor; it is matched against
    the one-component entries (``include_mixtures`` adds the mixtures' moment-matched Gaussians).
    """
    terms, table = lut.matchable(include_mixtures)
    index, dist = nearest(box_params(boxes, lut.grid, lut.sigma_divisor), table, chunk)
    return [terms[i] for i in index], dist
