"""Squared 2-Wasserstein distance and the vectorised nearest-location lookup."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from cxrdata.anatomy.gaussian import params_to_boxes
from cxrdata.anatomy.lut import build_lut
from cxrdata.anatomy.wasserstein import match_boxes, nearest, w2_squared

RIGHT = {
    "lung": (0.10, 0.12, 0.47, 0.80),
    "apical zone": (0.12, 0.12, 0.40, 0.22),
    "upper lung zone": (0.10, 0.18, 0.47, 0.38),
    "mid lung zone": (0.10, 0.38, 0.47, 0.56),
    "lower lung zone": (0.10, 0.56, 0.47, 0.80),
    "costophrenic angle": (0.10, 0.72, 0.20, 0.80),
}


def template() -> list[tuple[str, tuple[float, ...]]]:
    out = [("cardiac silhouette", (0.38, 0.48, 0.72, 0.78))]
    for name, (x0, y0, x1, y1) in RIGHT.items():
        out.append((f"right {name}", (x0, y0, x1, y1)))
        out.append((f"left {name}", (1 - x1, y0, 1 - x0, y1)))
    return out


@pytest.fixture(scope="module")
def lut():
    return build_lut(template())


def general_w2_squared(m1, c1, m2, c2) -> float:
    """The general Gaussian formula, computed numerically."""
    root2 = sqrtm(c2)
    cross = sqrtm(root2 @ c1 @ root2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(cross)))


def test_diagonal_formula_matches_the_general_one():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = np.concatenate([rng.uniform(0, 512, 2), rng.uniform(1, 100, 2)])
        b = np.concatenate([rng.uniform(0, 512, 2), rng.uniform(1, 100, 2)])
        want = general_w2_squared(a[:2], np.diag(a[2:] ** 2), b[:2], np.diag(b[2:] ** 2))
        assert w2_squared(a, b) == pytest.approx(want, rel=1e-9, abs=1e-6)
    assert w2_squared(a, a) == 0


def test_w2_broadcasts():
    rng = np.random.default_rng(1)
    p, q = rng.uniform(0, 1, (5, 1, 4)), rng.uniform(0, 1, (1, 3, 4))
    d = w2_squared(p, q)
    assert d.shape == (5, 3)
    assert d[2, 1] == pytest.approx(np.sum((p[2, 0] - q[0, 1]) ** 2))


def test_nearest_matches_brute_force_and_ignores_chunking():
    rng = np.random.default_rng(2)
    p, q = rng.uniform(0, 512, (1000, 4)), rng.uniform(0, 512, (19, 4))
    brute = ((p[:, None, :] - q[None]) ** 2).sum(-1)
    idx, dist = nearest(p, q)
    np.testing.assert_array_equal(idx, brute.argmin(1))
    np.testing.assert_allclose(dist, brute.min(1))
    idx7, dist7 = nearest(p, q, chunk=7)
    np.testing.assert_array_equal(idx7, idx)
    np.testing.assert_array_equal(dist7, dist)


def test_ties_go_to_the_lowest_index():
    q = np.array([[5.0, 5, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [10, 10, 1, 1]])
    idx, dist = nearest([[0, 0, 1, 1], [5, 5, 1, 1], [5, 5, 1, 1]], q)
    assert idx.tolist() == [1, 0, 0] and dist.tolist() == [0, 0, 0]
    # equidistant from rows 1 and 3 of a symmetric table
    idx, _ = nearest([[0, 0, 1, 1]], [[9, 9, 9, 9], [1, 0, 1, 1], [9, 9, 9, 9], [-1, 0, 1, 1]])
    assert idx.tolist() == [1]


def test_nearest_edge_cases():
    idx, dist = nearest(np.empty((0, 4)), [[0, 0, 1, 1]])
    assert idx.shape == dist.shape == (0,)
    with pytest.raises(ValueError, match="empty"):
        nearest([[0, 0, 1, 1]], np.empty((0, 4)))


def test_anatomical_boxes_find_their_location(lut):
    def mean_box(term):
        return params_to_boxes(lut.params(term), lut.grid, lut.sigma_divisor)[0]

    boxes = [mean_box(t) for t in ("left lower", "left middle", "right apical", "cardiomegaly", "pulmonary")]
    terms, dist = match_boxes(boxes, lut)
    # duplicates go to the first term in vocabulary order: lower (not pleural/base), middle (not lingular)
    assert terms == ["left lower", "left middle", "right apical", "cardiomegaly", "pulmonary"]
    np.testing.assert_allclose(dist, 0, atol=1e-9)
    nudged, d = match_boxes([np.add(mean_box("right costophrenic"), 0.01)], lut)
    assert nudged == ["right costophrenic"] and d[0] > 0


def test_mixtures_only_on_request(lut):
    spans_lower_lungs = (0.10, 0.56, 0.90, 0.80)
    assert match_boxes([spans_lower_lungs], lut)[0] != ["bilateral lower"]
    # "bilateral lower" and "bibasilar" share their Gaussians; the earlier term wins the tie
    assert match_boxes([spans_lower_lungs], lut, include_mixtures=True)[0] == ["bilateral lower"]
