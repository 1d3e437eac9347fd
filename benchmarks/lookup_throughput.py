"""Throughput of the Wasserstein nearest-location lookup (boxes per second on one core).

    python benchmarks/lookup_throughput.py [--boxes 2000000] [--repeats 3]

The LUT is built from a synthetic anatomy template (the real one needs Chest ImaGenome); the lookup
cost depends only on the number of candidate Gaussians (19 one-component entries), not on their values.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, before numpy loads

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cxrdata.anatomy.gaussian import box_params  # noqa: E402
from cxrdata.anatomy.lut import build_lut  # noqa: E402
from cxrdata.anatomy.wasserstein import match_boxes, nearest  # noqa: E402

RIGHT = {
    "lung": (0.10, 0.12, 0.47, 0.80), "apical zone": (0.12, 0.12, 0.40, 0.22),
    "upper lung zone": (0.10, 0.18, 0.47, 0.38), "mid lung zone": (0.10, 0.38, 0.47, 0.56),
    "lower lung zone": (0.10, 0.56, 0.47, 0.80), "costophrenic angle": (0.10, 0.72, 0.20, 0.80),
}


def template_lut():
    gold = [("cardiac silhouette", (0.38, 0.48, 0.72, 0.78))]
    for name, (x0, y0, x1, y1) in RIGHT.items():
        gold += [(f"right {name}", (x0, y0, x1, y1)), (f"left {name}", (1 - x1, y0, 1 - x0, y1))]
    return build_lut(gold)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    lut = template_lut()
    rng = np.random.default_rng(0)
    lo = rng.uniform(0, 0.7, (args.boxes, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(0.02, 0.3, (args.boxes, 2))], axis=1)
    terms, table = lut.matchable()
    params = box_params(boxes, lut.grid, lut.sigma_divisor)

    n = args.boxes
    t_params = best_of(args.repeats, lambda: box_params(boxes, lut.grid, lut.sigma_divisor))
    t_nearest = best_of(args.repeats, lambda: nearest(params, table))
    t_match = best_of(args.repeats, lambda: match_boxes(boxes, lut))
    print(f"{n:,} boxes against {len(terms)} one-component LUT entries, one thread")
    print(f"  boxes -> Gaussians          {n / t_params / 1e6:8.2f} M boxes/s")
    print(f"  nearest (index + W2²)       {n / t_nearest / 1e6:8.2f} M boxes/s")
    print(f"  match_boxes (incl. terms)   {n / t_match / 1e6:8.2f} M boxes/s   target >= 1 M/s")


if __name__ == "__main__":
    main()
