"""Time of the grounding metrics on a 512 x 512 heatmap, and of the 10,000-resample bootstrap.

    python benchmarks/metrics_throughput.py [--size 512] [--repeats 200]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, before numpy loads

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cxrdata.evaluate.bootstrap import bootstrap_ci  # noqa: E402
from cxrdata.evaluate.grounding import (  # noqa: E402
    THRESHOLDS,
    box_mask,
    cnr,
    iou_at_thresholds,
    minmax_normalise,
    oracle_heatmap,
    prepare_heatmap,
)


def per_call_ms(repeats: int, fn) -> float:
    fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    s, r = args.size, args.repeats

    boxes = [(0.15, 0.55, 0.45, 0.8), (0.6, 0.5, 0.85, 0.78)]
    heat = minmax_normalise(oracle_heatmap(boxes, s, s))
    padded = prepare_heatmap(np.random.default_rng(0).random((64, 64)), s, int(s * 1.2))
    mask = box_mask(boxes, s, s)
    mask_padded = box_mask(boxes, s, int(s * 1.2))

    t_iou = per_call_ms(r, lambda: iou_at_thresholds(heat, mask))
    print(f"{s} x {s} heatmap, one thread (ms per call)")
    per_t = t_iou / len(THRESHOLDS)
    print(f"  mIoU, {len(THRESHOLDS)} thresholds         {t_iou:7.3f}   ({per_t:.3f} per threshold)")
    print(f"  CNR                          {per_call_ms(r, lambda: cnr(heat, mask)):7.3f}")
    print(f"  CNR with NaN padding         {per_call_ms(r, lambda: cnr(padded, mask_padded)):7.3f}")
    t_padded = per_call_ms(r, lambda: iou_at_thresholds(padded, mask_padded))
    print(f"  mIoU with NaN padding        {t_padded:7.3f}")
    print(f"  box mask                     {per_call_ms(r, lambda: box_mask(boxes, s, s)):7.3f}")
    print(f"  min-max normalise            {per_call_ms(r, lambda: minmax_normalise(heat)):7.3f}")
    small = padded[:64, :64]
    print(f"  64x64 -> grid + pad + norm   {per_call_ms(r, lambda: prepare_heatmap(small, s, s)):7.3f}")
    print(f"  Oracle heatmap (2 boxes)     {per_call_ms(r, lambda: oracle_heatmap(boxes, s, s)):7.3f}")
    values = np.random.default_rng(1).normal(size=333)
    t_boot = per_call_ms(3, lambda: bootstrap_ci(values, name="Cardiomegaly"))
    print(f"  bootstrap CI, n=333, 10,000 resamples  {t_boot:7.1f}")


if __name__ == "__main__":
    main()
