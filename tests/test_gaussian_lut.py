"""Gaussians from boxes, their heatmaps, and the Chest ImaGenome Gaussian LUT (build, JSON, jitter)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cxrdata
from cxrdata import vocabulary
from cxrdata.anatomy.gaussian import Gaussian2D, box_params, params_to_boxes, render, render_boxes
from cxrdata.anatomy.lut import (
    build_lut,
    imagenome_regions,
    jitter,
    location_mapping,
    lut_to_dict,
    moment_match,
    read_lut,
    write_lut,
)
from cxrdata.errors import CxrdataError

# A PA chest film in canonical coordinates (patient's right lung on the image's left).
ANATOMY = {
    "right lung": (0.10, 0.12, 0.47, 0.80),
    "right apical zone": (0.12, 0.12, 0.40, 0.22),
    "right upper lung zone": (0.10, 0.18, 0.47, 0.38),
    "right mid lung zone": (0.10, 0.38, 0.47, 0.56),
    "right lower lung zone": (0.10, 0.56, 0.47, 0.80),
    "right costophrenic angle": (0.10, 0.72, 0.20, 0.80),
    "cardiac silhouette": (0.38, 0.48, 0.72, 0.78),
    "trachea": (0.46, 0.02, 0.54, 0.30),  # not used by the mapping: ignored
}
for _name, (_x0, _y0, _x1, _y1) in list(ANATOMY.items()):
    if _name.startswith("right"):
        ANATOMY["left" + _name[5:]] = (1 - _x1, _y0 + 0.02, 1 - _x0, _y1 + 0.02)


def gold_boxes(n_images: int = 40, seed: int = 0) -> list[tuple[str, tuple[float, ...]]]:
    """ImaGenome-like gold boxes: the template shifted and scaled per image."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_images):
        dx, dy, s = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), rng.uniform(0.95, 1.03)
        for name, (x0, y0, x1, y1) in ANATOMY.items():
            box = [0.5 + (x0 - 0.5) * s + dx, 0.5 + (y0 - 0.5) * s + dy,
                   0.5 + (x1 - 0.5) * s + dx, 0.5 + (y1 - 0.5) * s + dy]
            out.append((name, tuple(min(max(v, 0.0), 1.0) for v in box)))
    return out


@pytest.fixture(scope="module")
def lut():
    return build_lut(gold_boxes())


# --- Gaussians -------------------------------------------------------------------------------------------


def test_box_params_follow_the_paper():
    g = Gaussian2D.from_box((0.25, 0.5, 0.75, 1.0), grid=512, divisor=6)
    assert (g.mu_x, g.mu_y) == (256.0, 384.0)
    assert g.sigma_x == pytest.approx(256 / 6) and g.sigma_y == pytest.approx(256 / 6)
    oracle = box_params([(0.0, 0.0, 0.3, 0.6)], grid=1.0, divisor=3)[0]
    np.testing.assert_allclose(oracle, [0.15, 0.3, 0.1, 0.2])


def test_box_params_vectorised_and_inverse():
    rng = np.random.default_rng(1)
    lo = rng.uniform(0, 0.5, (100, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(0.01, 0.5, (100, 2))], axis=1)
    params = box_params(boxes, 512, 6)
    assert params.shape == (100, 4)
    np.testing.assert_allclose(params_to_boxes(params, 512, 6), boxes, atol=1e-12)


def test_render_is_a_separable_gaussian_with_peak_one():
    p = np.array([[100.0, 300.0, 20.0, 40.0]])
    heat = render(p, 128, 64, grid=512)
    assert heat.shape == (128, 64) and heat.dtype == np.float32
    ys, xs = (np.arange(128) + 0.5) * 4, (np.arange(64) + 0.5) * 8
    want = np.outer(np.exp(-0.5 * ((ys - 300) / 40) ** 2), np.exp(-0.5 * ((xs - 100) / 20) ** 2))
    np.testing.assert_allclose(heat, want / want.max(), atol=1e-6)
    assert heat.max() == pytest.approx(1.0)


def test_mixture_is_the_normalised_sum_and_max_combines_pixelwise():
    p = np.array([[128.0, 256.0, 30.0, 30.0], [384.0, 256.0, 30.0, 30.0]])
    both = render(p, 64, 64, normalise=False)
    parts = render(p[:1], 64, 64, normalise=False) + render(p[1:], 64, 64, normalise=False)
    np.testing.assert_allclose(both, parts, atol=1e-6)
    mix = render(p, 64, 64)
    assert mix.max() == pytest.approx(1.0) and mix.min() >= 0
    np.testing.assert_allclose(mix, both / both.max(), atol=1e-6)
    peak = render(p, 64, 64, combine="max")
    np.testing.assert_allclose(peak, np.maximum(render(p[:1], 64, 64), render(p[1:], 64, 64)), atol=1e-6)
    assert not render(np.empty((0, 4)), 8, 8).any()


def test_render_boxes_centres_the_peak_in_the_box():
    heat = render_boxes([(0.2, 0.6, 0.4, 0.9)], 100, 200, divisor=3)
    row, col = np.unravel_index(heat.argmax(), heat.shape)
    assert 0.2 * 200 <= col <= 0.4 * 200 and 0.6 * 100 <= row <= 0.9 * 100


# --- the mapping -----------------------------------------------------------------------------------------


def test_every_location_term_has_an_entry():
    mapping = location_mapping()
    assert list(mapping) == list(vocabulary.locations())
    assert len(mapping) == 27
    assert all(e["components"] and e["basis"] in {"direct", "paper", "cxrdata"} for e in mapping.values())


def test_paper_and_documented_mappings():
    m = location_mapping()

    def boxes(term):
        return [c.get("box") or tuple(c["span"]) for c in m[term]["components"]]

    for side in ("left", "right"):
        assert boxes(f"{side} base") == boxes(f"{side} pleural") == [f"{side} lower lung zone"]
        assert boxes(f"{side} middle") == [f"{side} mid lung zone"]
        assert boxes(f"{side} upper") == [f"{side} upper lung zone"]
        assert boxes(f"{side} apical") == [f"{side} apical zone"]
        assert boxes(f"{side} costophrenic") == [f"{side} costophrenic angle"]
        assert boxes(side) == [f"{side} lung"]
    assert boxes("lingular") == ["left mid lung zone"]
    assert boxes("bibasilar") == ["left lower lung zone", "right lower lung zone"]
    assert boxes("bilateral middle") == ["left mid lung zone", "right mid lung zone"]
    assert boxes("cardiomegaly") == ["cardiac silhouette"]
    assert boxes("pulmonary") == [("left lung", "right lung")]
    assert set(imagenome_regions()) <= set(ANATOMY) - {"trachea"}


# --- building ------------------------------------------------------------------------------------------


def test_build_averages_per_region(lut):
    gold = gold_boxes()
    want = box_params([b for n, b in gold if n == "left lower lung zone"], 512, 6).mean(axis=0)
    for term in ("left lower", "left pleural", "left base"):
        np.testing.assert_allclose(lut.params(term), [want])
    assert lut.entries["left lower"].counts == (40,)
    assert lut.grid == 512 and lut.sigma_divisor == 6.0 and lut.cxrdata_version == cxrdata.__version__
    np.testing.assert_allclose(lut.params("lingular"), lut.params("left middle"))


def test_bilateral_terms_are_two_component_mixtures(lut):
    bib = lut.entries["bibasilar"]
    assert bib.is_mixture and bib.counts == (40, 40)
    np.testing.assert_allclose(bib.params, np.vstack([lut.params("left lower"), lut.params("right lower")]))
    assert sum(e.is_mixture for e in lut.entries.values()) == 8
    heat = lut.heatmap("bibasilar", 64, 64)
    assert heat.max() == pytest.approx(1.0)
    assert heat[:, :32].max() > 0.9 and heat[:, 32:].max() > 0.9  # one lobe per lung


def test_pulmonary_spans_both_lungs(lut):
    left = params_to_boxes(lut.params("left"), 512, 6)[0]
    right = params_to_boxes(lut.params("right"), 512, 6)[0]
    span = params_to_boxes(lut.params("pulmonary"), 512, 6)[0]
    np.testing.assert_allclose(span, [right[0], min(left[1], right[1]), left[2], max(left[3], right[3])])
    assert lut.entries["pulmonary"].counts == (80,)


def test_build_grid_is_configurable():
    small = build_lut(gold_boxes(5), grid=256)
    big = build_lut(gold_boxes(5), grid=512)
    np.testing.assert_allclose(small.params("cardiomegaly") * 2, big.params("cardiomegaly"))


def test_build_skips_unusable_boxes_and_requires_every_region():
    gold = [*gold_boxes(3), ("left lung", (0.5, 0.5, 0.5, 0.9)), ("left lung", (float("nan"), 0, 1, 1))]
    assert build_lut(gold).skipped_boxes == 2
    with pytest.raises(CxrdataError, match="cardiac silhouette"):
        build_lut([(n, b) for n, b in gold_boxes(3) if n != "cardiac silhouette"])


# --- JSON ----------------------------------------------------------------------------------------------


def test_json_round_trip(lut, tmp_path):
    path = tmp_path / "lut.json"
    write_lut(lut, path)
    doc = json.loads(path.read_text())
    assert doc["grid"] == 512 and doc["sigma_divisor"] == 6.0
    assert doc["cxrdata_version"] == cxrdata.__version__
    assert doc["locations"]["bibasilar"]["counts"] == [40, 40]
    back = read_lut(path)
    assert back == lut


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["locations"].pop("lingular"), "missing locations.*lingular"),
        (lambda d: d["locations"].__setitem__("middle left", d["locations"]["left"]), "unknown locations"),
        (lambda d: d.__setitem__("grid", -3), "grid"),
        (lambda d: d.__setitem__("sigma_divisor", "six"), "sigma_divisor"),
        (lambda d: d.__setitem__("format", "other"), "format"),
        (lambda d: d["locations"]["left"].__setitem__("components", [[1, 2, 3]]), "left.*4 finite"),
        (lambda d: d["locations"]["left"].__setitem__("components", [[1, 2, 0, 3]]), "non-positive sigma"),
        (lambda d: d["locations"]["bibasilar"].__setitem__("counts", [1]), "bibasilar.*counts"),
    ],
)
def test_read_rejects_malformed_lut(lut, tmp_path, edit, message):
    doc = lut_to_dict(lut)
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CxrdataError, match=message):
        read_lut(path)


def test_read_rejects_non_json_and_missing_file(tmp_path):
    path = tmp_path / "lut.json"
    path.write_text("{not json")
    with pytest.raises(CxrdataError, match="not a JSON"):
        read_lut(path)
    with pytest.raises(CxrdataError, match="not found"):
        read_lut(tmp_path / "absent.json")


# --- jitter and matching candidates --------------------------------------------------------------------


def test_jitter_is_bounded_and_seeded(lut):
    base = lut.params("bibasilar")
    draws = np.stack([lut.jittered("bibasilar", seed) for seed in range(300)])
    shift = draws - base
    assert np.abs(shift).max() <= 0.05 * 512 + 1e-9
    assert np.abs(shift).max() > 0.045 * 512  # the whole range is used
    np.testing.assert_array_equal(lut.jittered("bibasilar", 7), lut.jittered("bibasilar", 7))
    assert not np.array_equal(lut.jittered("bibasilar", 7), lut.jittered("bibasilar", 8))
    tiny = jitter([[10.0, 10.0, 0.1, 0.1]], 0, grid=512)
    assert (tiny[:, 2:] > 0).all()


def test_matchable_excludes_mixtures_by_default(lut):
    terms, table = lut.matchable()
    assert len(terms) == 19 and table.shape == (19, 4)
    assert "bibasilar" not in terms and terms[0] == "left"
    terms_all, table_all = lut.matchable(include_mixtures=True)
    assert terms_all == vocabulary.locations()
    np.testing.assert_allclose(table_all[terms_all.index("bibasilar")], moment_match(lut.params("bibasilar")))


def test_moment_match_of_one_component_is_itself():
    row = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(moment_match(row), row[0])
    two = moment_match([[0, 0, 1, 1], [2, 0, 1, 1]])
    np.testing.assert_allclose(two, [1, 0, np.sqrt(2), 1])
