"""``cxrdata eval grounding``: score heatmaps against the boxes of built shards, per class (seed 003, section 4).

Records (:mod:`cxrdata.evaluate.grounding_records`): the rows of one config with boxes and a class.
Heatmaps: the files a model's heatmap command writes (:mod:`cxrdata.models.prediction_files`), one
``<sanitised record id>.npy`` per record: the model's map for the record's prompt on the centre-cropped
square input; the protocol (:func:`cxrdata.evaluate.grounding.evaluate_heatmap`) resizes it to the short side
of the original image, pads it centred to the full size and min-max normalises it. With ``--oracle`` no files
are read: each record's heatmap is the Oracle Gaussian of its own boxes (σ = range / 3), drawn on the full
original grid. With ``--boxes FILE`` (predicted boxes, :func:`load_box_predictions`) each record's heatmap is
the binary mask of its predicted boxes on the full original grid (no boxes: an all-zero map).

Nothing is skipped silently: a missing or malformed heatmap file raises :class:`CxrdataError`, as do the
record checks. Per-class means come with 95 % percentile bootstrap intervals (10,000 resamples,
:mod:`cxrdata.evaluate.bootstrap`); the average row is the mean of the class means, as in the paper's tables.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cxrdata.errors import CxrdataError
from cxrdata.evaluate.bootstrap import CONFIDENCE, N_RESAMPLES, ClassSummary, bootstrap_ci, bootstrap_means
from cxrdata.evaluate.grounding import Interpolation, box_mask, evaluate_heatmap, oracle_heatmap, score
from cxrdata.evaluate.grounding_records import GroundingRecord, check_boxes, class_order, load_records
from cxrdata.models.prediction_files import BOXES_FORMAT, heatmap_name, load_heatmap


@dataclass(frozen=True)
class RecordScore:
    id: str
    split: str
    class_name: str
    cnr: float
    miou: float


@dataclass
class ClassRow:
    """One table row: CNR and mIoU summaries of a class (``nan_cnr``: records whose CNR is undefined)."""

    name: str
    n: int
    cnr: ClassSummary
    miou: ClassSummary
    nan_cnr: int


@dataclass
class GroundingReport:
    config: str
    method: str  # "oracle" or "heatmaps:<dir>"
    splits: list[str]
    seed: int
    n_resamples: int
    confidence: float
    scores: list[RecordScore]
    rows: list[ClassRow]
    average_cnr: float
    average_miou: float
    skipped_no_box: list[str]


def load_box_predictions(path: str | Path) -> dict[str, NDArray[np.float64]]:
    """Predicted boxes per record id from a ``cxrdata-boxes/1`` JSON (``cxrdata predict lofi-boxes``):
    ``{"format": "cxrdata-boxes/1", "records": {"<id>": {"boxes": [[x_min, y_min, x_max, y_max], ...]}}}``,
    canonical boxes normalised to the original image; an empty list is a prediction of nothing."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CxrdataError(f"--boxes {path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != BOXES_FORMAT or not isinstance(doc.get("records"), dict):
        raise CxrdataError(f"--boxes {path}: not a {BOXES_FORMAT} predictions file (`cxrdata predict lofi-boxes`)")
    out = {}
    for record_id, rec in doc["records"].items():
        raw = (rec or {}).get("boxes") or []
        out[str(record_id)] = check_boxes(str(record_id), raw) if raw else np.zeros((0, 4))
    return out


def score_records(records: Sequence[GroundingRecord], heatmaps: str | Path | None = None,
                  interpolation: Interpolation = "nearest",
                  boxes: dict[str, NDArray[np.float64]] | None = None) -> list[RecordScore]:
    """CNR and mIoU of every record: its heatmap from ``heatmaps``, the binary mask of its predicted ``boxes``
    (on the original grid), or the Oracle when both are None.

    All heatmap files (or box predictions) are checked to exist before any is scored.
    """
    if boxes is not None:
        missing = [r.id for r in records if r.id not in boxes]
        if missing:
            raise CxrdataError(f"{len(missing)} of {len(records)} records have no box prediction, e.g. "
                               f"{', '.join(missing[:3])}")
        out = []
        for r in records:
            result = score(box_mask(boxes[r.id], r.width, r.height).astype(np.float32), r.boxes, r.width, r.height)
            out.append(RecordScore(r.id, r.split, r.class_name, result.cnr, result.miou))
        return out
    folder = None if heatmaps is None else Path(heatmaps)
    if folder is not None:
        if not folder.is_dir():
            raise CxrdataError(f"heatmap folder {folder} does not exist")
        names: dict[str, str] = {}
        for r in records:
            other = names.setdefault(heatmap_name(r.id), r.id)
            if other != r.id:
                raise CxrdataError(f"records {other!r} and {r.id!r} share the heatmap file name {heatmap_name(r.id)}")
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise CxrdataError(f"{len(missing)} of {len(records)} heatmaps missing in {folder}, e.g. "
                               f"{', '.join(missing[:3])} (layout: one <sanitised record id>.npy per record)")
    out = []
    for r in records:
        if folder is None:
            result = score(oracle_heatmap(r.boxes, r.width, r.height), r.boxes, r.width, r.height)
        else:
            result = evaluate_heatmap(load_heatmap(folder, r.id), r.boxes, r.width, r.height, interpolation)
        out.append(RecordScore(r.id, r.split, r.class_name, result.cnr, result.miou))
    return out


def _summary(values: Sequence[float], name: str, seed: int, n_resamples: int, confidence: float) -> ClassSummary:
    """:func:`bootstrap_ci`, extended to ±inf values (a perfectly binary heatmap has CNR = inf)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0 or np.isfinite(v).all():
        return bootstrap_ci(v, seed, n_resamples, confidence, name)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # the same stream bootstrap_ci uses
    with np.errstate(invalid="ignore"):
        means = bootstrap_means(v, rng, n_resamples)
        means = means[~np.isnan(means)]
        alpha = (1 - confidence) / 2
        low, high = np.quantile(means, [alpha, 1 - alpha], method="inverted_cdf") if means.size else (math.nan,) * 2
        mean = float(v.mean())
    return ClassSummary(name, int(v.size), mean, float(low), float(high))


def summarise_scores(scores: Sequence[RecordScore], seed: int = 0, n_resamples: int = N_RESAMPLES,
                     confidence: float = CONFIDENCE) -> tuple[list[ClassRow], float, float]:
    """Per-class rows in table order and the averages of the class means (CNR, mIoU)."""
    rows = []
    for name in class_order(s.class_name for s in scores):
        of = [s for s in scores if s.class_name == name]
        cnr = [s.cnr for s in of]
        rows.append(ClassRow(name, len(of), _summary(cnr, name, seed, n_resamples, confidence),
                             _summary([s.miou for s in of], name, seed, n_resamples, confidence),
                             sum(1 for c in cnr if math.isnan(c))))
    with np.errstate(invalid="ignore"):
        cnr_means = [r.cnr.mean for r in rows if r.cnr.n]
        miou_means = [r.miou.mean for r in rows if r.miou.n]
        avg_cnr = float(np.mean(cnr_means)) if cnr_means else math.nan
        avg_miou = float(np.mean(miou_means)) if miou_means else math.nan
    return rows, avg_cnr, avg_miou


def evaluate_grounding(data: str | Path, heatmaps: str | Path | None = None, oracle: bool = False,
                       config: str | None = None, split: str | None = None, classes: Sequence[str] | None = None,
                       seed: int = 0, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                       interpolation: Interpolation = "nearest", boxes: str | Path | None = None) -> GroundingReport:
    """The whole command: load records, score them (heatmaps, predicted boxes or Oracle), summarise per class."""
    if sum((oracle, heatmaps is not None, boxes is not None)) != 1:
        raise CxrdataError("give exactly one of --heatmaps DIR, --boxes FILE or --oracle")
    predicted = None if boxes is None else load_box_predictions(boxes)
    loaded = load_records(data, config, split, classes)
    scores = score_records(loaded.records, None if oracle else heatmaps, interpolation, predicted)
    rows, avg_cnr, avg_miou = summarise_scores(scores, seed, n_resamples, confidence)
    return GroundingReport(
        config=loaded.config,
        method="oracle" if oracle else f"boxes:{boxes}" if boxes is not None else f"heatmaps:{heatmaps}",
        splits=sorted({r.split for r in loaded.records}), seed=seed, n_resamples=n_resamples,
        confidence=confidence, scores=scores, rows=rows, average_cnr=avg_cnr, average_miou=avg_miou,
        skipped_no_box=loaded.skipped_no_box,
    )
