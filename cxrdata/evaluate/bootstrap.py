"""Per-class means with percentile bootstrap confidence intervals (seed 003: 95 %, 10,000 resamples).

Each class draws its resamples from its own numpy Generator seeded by ``(seed, crc32(class name))``,
so a class's interval does not depend on which other classes are summarised or in what order.
Resampling is vectorised: one ``(resamples, n)`` index matrix per block of resamples.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
# Upper bound on the elements of one block of the resample index matrix (memory ~ 8 bytes each).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class ClassSummary:
    """Mean of one class's per-record values with its bootstrap interval."""

    name: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


def bootstrap_means(values: ArrayLike, rng: np.random.Generator,
                    n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of ``values``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    means = np.empty(n_resamples)
    block = max(1, _BLOCK_ELEMENTS // max(v.size, 1))
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        idx = rng.integers(0, v.size, size=(stop - start, v.size))
        means[start:stop] = v[idx].mean(axis=1)
    return means


def bootstrap_ci(values: ArrayLike, seed: int = 0, n_resamples: int = N_RESAMPLES,
                 confidence: float = CONFIDENCE, name: str = "") -> ClassSummary:
    """Mean and percentile bootstrap interval of one class's values (NaN values are dropped)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return ClassSummary(name, 0, math.nan, math.nan, math.nan)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    means = bootstrap_means(v, rng, n_resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return ClassSummary(name, int(v.size), float(v.mean()), float(low), float(high))


def summarise(per_class: Mapping[str, Sequence[float]], seed: int = 0, n_resamples: int = N_RESAMPLES,
              confidence: float = CONFIDENCE) -> tuple[list[ClassSummary], float]:
    """Per-class summaries (in the mapping's order) and the average of the class means (the paper's
    "Average" row, classes weighted equally; empty classes are left out of it)."""
    rows = [bootstrap_ci(v, seed, n_resamples, confidence, name) for name, v in per_class.items()]
    means = [r.mean for r in rows if r.n]
    return rows, float(np.mean(means)) if means else math.nan
