"""Grounding metrics (CNR, mIoU), the evaluation protocol, bootstrap CIs, and the Oracle against the paper."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from cxrdata.evaluate.bootstrap import bootstrap_ci, summarise
from cxrdata.evaluate.grounding import (
    box_mask,
    cnr,
    evaluate_heatmap,
    iou_at_thresholds,
    minmax_normalise,
    miou,
    oracle_heatmap,
    score,
    to_image_grid,
)

# --- protocol steps --------------------------------------------------------------------------------------


def test_to_image_grid_pads_centred_with_nan():
    heat = np.arange(4, dtype=np.float32).reshape(2, 2)
    out = to_image_grid(heat, width=7, height=4)  # side 4, margin 3: 1 column before, 2 after
    assert out.shape == (4, 7)
    assert np.isnan(out[:, 0]).all() and np.isnan(out[:, 5:]).all()
    np.testing.assert_array_equal(out[:, 1:5], np.kron(heat, np.ones((2, 2))))  # nearest neighbour
    tall = to_image_grid(heat, width=4, height=9)
    assert np.isnan(tall[:2]).all() and np.isnan(tall[6:]).all() and not np.isnan(tall[2:6]).any()


def test_minmax_normalise_ignores_nan():
    h = minmax_normalise(np.array([[np.nan, 2.0], [4.0, 6.0]]))
    assert np.isnan(h[0, 0])
    np.testing.assert_allclose(h[~np.isnan(h)], [0, 0.5, 1])
    assert not minmax_normalise(np.full((3, 3), 5.0)).any()


def test_box_mask_uses_pixel_centres_and_unions():
    m = box_mask([(0.1, 0.2, 0.3, 0.5), (0.25, 0.4, 0.6, 0.6)], width=20, height=10)
    want = np.zeros((10, 20), dtype=bool)
    want[2:5, 2:6] = True  # integer pixel edges: the same as slicing
    want[4:6, 5:12] = True
    np.testing.assert_array_equal(m, want)


# --- metrics ---------------------------------------------------------------------------------------------


def test_perfect_binary_map():
    mask = box_mask([(0.2, 0.2, 0.5, 0.7)], 64, 48)
    heat = mask.astype(np.float32)
    assert miou(heat, mask) == 1.0
    assert cnr(heat, mask) == math.inf
    assert cnr(1 - heat, mask) == -math.inf


def test_cnr_is_signed():
    rng = np.random.default_rng(0)
    mask = box_mask([(0.3, 0.3, 0.6, 0.6)], 50, 50)
    heat = rng.uniform(0, 0.5, (50, 50)).astype(np.float32) + 0.4 * mask
    assert cnr(heat, mask) > 1
    brighter_outside = 1 - heat
    assert cnr(brighter_outside, mask) == pytest.approx(-cnr(heat, mask), rel=1e-5)
    inside, outside = heat[mask].astype(float), heat[~mask].astype(float)
    want = (inside.mean() - outside.mean()) / math.sqrt(inside.var() + outside.var())
    assert cnr(heat, mask) == pytest.approx(want, rel=1e-5)


def test_nan_pixels_are_ignored_by_cnr_and_never_predicted():
    rng = np.random.default_rng(1)
    heat = rng.uniform(0, 1, (40, 60)).astype(np.float32)
    mask = box_mask([(0.0, 0.2, 0.5, 0.8)], 60, 40)
    padded = heat.copy()
    padded[:, :10] = np.nan
    valid = ~np.isnan(padded)
    inside, outside = heat[mask & valid].astype(float), heat[~mask & valid].astype(float)
    want = (inside.mean() - outside.mean()) / math.sqrt(inside.var() + outside.var())
    assert cnr(padded, mask) == pytest.approx(want, rel=1e-5)
    for t, iou in zip((0.1, 0.3, 0.5), iou_at_thresholds(padded, mask, (0.1, 0.3, 0.5)), strict=True):
        pred = valid & (padded >= t)
        assert iou == pytest.approx((pred & mask).sum() / (pred | mask).sum())
    scattered = heat.copy()  # NaN anywhere, not only a padding frame
    holes = rng.random(heat.shape) < 0.2
    scattered[holes] = np.nan
    inside, outside = heat[mask & ~holes].astype(float), heat[~mask & ~holes].astype(float)
    want = (inside.mean() - outside.mean()) / math.sqrt(inside.var() + outside.var())
    assert cnr(scattered, mask) == pytest.approx(want, rel=1e-5)
    assert math.isnan(cnr(np.full((4, 4), np.nan, dtype=np.float32), np.eye(4, dtype=bool)))


def test_miou_is_the_mean_over_five_thresholds():
    rng = np.random.default_rng(2)
    heat = rng.uniform(0, 1, (30, 30)).astype(np.float32)
    mask = box_mask([(0.1, 0.1, 0.7, 0.5)], 30, 30)
    ious = [((heat >= t) & mask).sum() / ((heat >= t) | mask).sum() for t in (0.1, 0.2, 0.3, 0.4, 0.5)]
    assert miou(heat, mask) == pytest.approx(np.mean(ious))


def test_evaluate_heatmap_runs_the_protocol():
    small = np.zeros((8, 8), dtype=np.float32)
    small[2:6, 2:6] = 3.0
    s = evaluate_heatmap(small, [(0.25, 0.25, 0.75, 0.75)], width=64, height=64)
    assert s.miou == 1.0 and s.cnr == math.inf
    portrait = evaluate_heatmap(small, [(0.25, 0.25, 0.75, 0.75)], width=64, height=80)
    assert portrait.miou < 1.0  # the square lands in the centred 64 x 64 window of the taller image


def test_metrics_speed_on_512():
    heat = minmax_normalise(oracle_heatmap([(0.2, 0.3, 0.5, 0.7)], 512, 512))
    mask = box_mask([(0.2, 0.3, 0.5, 0.7)], 512, 512)
    cnr(heat, mask), miou(heat, mask)
    start = time.perf_counter()
    for _ in range(20):
        cnr(heat, mask), miou(heat, mask)
    assert (time.perf_counter() - start) / 20 < 0.02  # generous for a busy CI core; benchmark: ~0.6 ms


# --- bootstrap -------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_mean_and_is_reproducible():
    values = np.random.default_rng(3).normal(1.5, 0.5, 333)
    a = bootstrap_ci(values, seed=7, name="Cardiomegaly")
    assert a.ci_low < a.mean < a.ci_high and a.n == 333
    assert a.mean == pytest.approx(values.mean())
    assert a == bootstrap_ci(values, seed=7, name="Cardiomegaly")
    assert a != bootstrap_ci(values, seed=8, name="Cardiomegaly")
    # the interval is about mean ± 1.96 standard errors
    se = values.std() / math.sqrt(values.size)
    assert a.ci_high - a.ci_low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_summary_is_order_independent_and_fast():
    rng = np.random.default_rng(4)
    per_class = {"Pneumonia": rng.normal(size=146), "Edema": rng.normal(size=41), "Empty": []}
    start = time.perf_counter()
    rows, average = summarise(per_class, seed=0)
    assert time.perf_counter() - start < 5
    flipped, _ = summarise(dict(reversed(per_class.items())), seed=0)
    assert {r.name: r for r in rows} == {r.name: r for r in flipped}
    assert average == pytest.approx(np.mean([per_class["Pneumonia"].mean(), per_class["Edema"].mean()]))
    assert rows[2].n == 0 and math.isnan(rows[2].mean)


# --- the Oracle against seed 003's table 5 ---------------------------------------------------------------
#
# Boxes shaped like the findings of MS-CXR and VinDr-CXR, drawn from the anatomy of a PA film in
# canonical coordinates: the patient's right lung spans x 0.10-0.47 of the image, the left 0.53-0.90;
# upper / middle / lower zones span y 0.14-0.36 / 0.36-0.56 / 0.56-0.80; the heart sits slightly left
# of centre (x ~0.54, y ~0.62). Per class:
#   Pneumonia, Consolidation, Lung Opacity  a patch 12-30 % wide, 10-25 % tall in one zone of one lung
#                                           (lower 50 %, middle 30 %, upper 20 %); a second patch in the
#                                           other lung in 25 % of the records
#   Atelectasis                             a flat band (6-14 % tall) in a lower zone; bibasilar in 30 %
#   Pleural Effusion                        a lower-lateral box on the costophrenic angle; 30 % bilateral
#   Pneumothorax                            an apical-lateral box starting at the apex
#   Edema                                   both lungs: two tall lung boxes, or one box over both (50/50)
#   Cardiomegaly                            the heart: 38-52 % wide, 24-36 % tall
# Record counts per class are the paper's N (tables 1 and 3); image sizes are MIMIC's 2539 x 3050
# portrait (80 %, else landscape) and VinDr's near-square 2300-3000 px, drawn at 1/8 scale (the metrics are
# ratios of areas and moments, so the scale changes them only through pixel rounding).

LUNG = {"right": (0.10, 0.47), "left": (0.53, 0.90)}
ZONE = {"upper": (0.14, 0.36), "middle": (0.36, 0.56), "lower": (0.56, 0.80)}
MS_CXR_LOC = {"Pneumonia": 146, "Pneumothorax": 204, "Consolidation": 105, "Atelectasis": 55, "Edema": 41,
              "Cardiomegaly": 333, "Lung Opacity": 78, "Pleural Effusion": 81}
VINDR_CXR = {"Pneumonia": 31, "Pneumothorax": 8, "Consolidation": 51, "Atelectasis": 60, "Cardiomegaly": 189,
             "Lung Opacity": 48, "Pleural Effusion": 56}


def _in_zone(rng, side, zone, w, h):
    x0, x1 = LUNG[side]
    cx = rng.uniform(x0 + w / 2, x1 - w / 2) if w < x1 - x0 else (x0 + x1) / 2
    cy = rng.uniform(*ZONE[zone])
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _centred(cx, cy, w, h):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def finding_boxes(rng: np.random.Generator, cls: str) -> np.ndarray:
    side = str(rng.choice(["left", "right"]))
    other = "left" if side == "right" else "right"
    if cls == "Cardiomegaly":
        boxes = [_centred(0.54 + rng.normal(0, 0.02), 0.62 + rng.normal(0, 0.03),
                          rng.uniform(0.38, 0.52), rng.uniform(0.24, 0.36))]
    elif cls == "Edema":
        if rng.random() < 0.5:
            boxes = [_in_zone(rng, s, "middle", rng.uniform(0.25, 0.35), rng.uniform(0.35, 0.55))
                     for s in LUNG]
        else:
            boxes = [_centred(0.5 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.03),
                              rng.uniform(0.6, 0.75), rng.uniform(0.4, 0.6))]
    elif cls == "Pneumothorax":
        w, h = rng.uniform(0.12, 0.30), rng.uniform(0.12, 0.35)
        x0, x1 = LUNG[side]
        cx = (x0 + w / 2 if side == "right" else x1 - w / 2) + rng.normal(0, 0.02)
        top = rng.uniform(0.10, 0.20)
        boxes = [[cx - w / 2, top, cx + w / 2, top + h]]
    elif cls in ("Atelectasis", "Pleural Effusion"):
        effusion = cls == "Pleural Effusion"
        w = rng.uniform(0.14, 0.32) if effusion else rng.uniform(0.12, 0.30)
        h = rng.uniform(0.10, 0.25) if effusion else rng.uniform(0.06, 0.14)
        boxes = []
        for s in [side, other] if rng.random() < 0.3 else [side]:
            box = _in_zone(rng, s, "lower", w, h)
            if effusion:
                bottom = rng.uniform(0.74, 0.82)
                box[1], box[3] = bottom - h, bottom
            boxes.append(box)
    else:  # Pneumonia, Consolidation, Lung Opacity
        zone = str(rng.choice(["lower", "middle", "upper"], p=[0.5, 0.3, 0.2]))
        boxes = [_in_zone(rng, side, zone, rng.uniform(0.12, 0.30), rng.uniform(0.10, 0.25))]
        if rng.random() < 0.25:
            boxes.append(_in_zone(rng, other, str(rng.choice(["lower", "middle"])),
                                  rng.uniform(0.12, 0.30), rng.uniform(0.10, 0.25)))
    return np.clip(np.array(boxes), 0.0, 1.0)


def image_size(rng: np.random.Generator, dataset: str, scale: int = 8) -> tuple[int, int]:
    if dataset == "mimic":
        w, h = (2539, 3050) if rng.random() < 0.8 else (3050, 2539)
    else:
        w = int(rng.uniform(2300, 3000))
        h = int(w * rng.uniform(0.95, 1.2))
    return w // scale, h // scale


def oracle_averages(counts: dict[str, int], dataset: str, seed: int = 0) -> tuple[float, float]:
    """The paper's "Average" row: the mean over classes of the per-class mean CNR and mIoU (%)."""
    rng = np.random.default_rng(seed)
    cnrs, mious = {}, {}
    for cls, n in counts.items():
        scores = []
        for _ in range(n):
            boxes = finding_boxes(rng, cls)
            w, h = image_size(rng, dataset)
            scores.append(score(oracle_heatmap(boxes, w, h), boxes, w, h))
        cnrs[cls] = [s.cnr for s in scores]
        mious[cls] = [100 * s.miou for s in scores]
    _, avg_cnr = summarise(cnrs, n_resamples=200)
    _, avg_miou = summarise(mious, n_resamples=200)
    return avg_cnr, avg_miou


@pytest.mark.parametrize(
    ("counts", "dataset", "paper_cnr", "paper_miou"),
    [(MS_CXR_LOC, "mimic", 2.11, 67.6), (VINDR_CXR, "vindr", 2.23, 67.5)],
    ids=["MS-CXR-loc", "VinDr-CXR"],
)
def test_oracle_reproduces_the_paper(counts, dataset, paper_cnr, paper_miou):
    avg_cnr, avg_miou = oracle_averages(counts, dataset)
    assert avg_miou == pytest.approx(paper_miou, abs=1.5)
    assert avg_cnr == pytest.approx(paper_cnr, abs=0.15)


def test_oracle_miou_is_a_geometric_constant():
    """With sigma = range / 3 the level set {G >= t} is an ellipse of radius sqrt(-2 ln t) sigma inside a
    box of half-width 1.5 sigma, whatever the box: the five IoUs are about 0.622, 0.809, 0.817, 0.640,
    0.484 and their mean 0.674 — the paper's 67.6 / 67.5 %."""
    box = [(0.3, 0.35, 0.7, 0.65)]
    heat = minmax_normalise(oracle_heatmap(box, 800, 800))
    ious = iou_at_thresholds(heat, box_mask(box, 800, 800))
    np.testing.assert_allclose(ious, [0.622, 0.809, 0.817, 0.640, 0.484], atol=0.004)
    assert ious.mean() == pytest.approx(0.674, abs=0.002)
