"""``cxrdata eval grounding``: score heatmaps against the boxes of built shards, per class (seed 003, section 4).

Records: every row of one config whose rows carry boxes and a class: ``boxes`` (a list of canonical
``[x_min, y_min, x_max, y_max]``) or else ``regions`` (structs with a ``box``), and the first class
column present of ``grounding_tables.yaml``'s ``class_columns`` (``category`` for ms-cxr and
ms-cxr-loc, ``class_name`` for vindr-prompts). Boxes are normalised to ``original_width`` x
``original_height``, the grid the metrics are computed on.

Heatmap layout (what a model's heatmap command writes, :func:`write_heatmap`)::

    DIR/<sanitised record id>.npy     one 2D float32 array per record, any square size

The sanitised id replaces every character outside ``[A-Za-z0-9._-]`` with ``_`` (MS-CXR
``<dicom_id>/3`` -> ``<dicom_id>_3.npy``, vindr-prompts ``<image_id>/pleural-effusion`` ->
``<image_id>_pleural-effusion.npy``). The array is the model's map for the record's prompt on the
centre-cropped square input; the protocol (:func:`cxrdata.evaluate.grounding.evaluate_heatmap`) resizes
it to the short side of the original image, pads it centred to the full size and min-max normalises
it. With ``--oracle`` no files are read: each record's heatmap is the Oracle Gaussian of its own boxes
(σ = range / 3), drawn on the full original grid. With ``--boxes FILE`` (predicted boxes,
:func:`load_box_predictions`) each record's heatmap is the binary mask of its predicted boxes on the full
original grid (no boxes: an all-zero map).

Nothing is skipped silently: a missing or malformed heatmap file, a box outside [0, 1], a row without
a class, or an unknown class in ``classes`` raises :class:`CxrdataError`; rows with no box at all are
listed in the report (``skipped_no_box``). Per-class means come with 95 % percentile bootstrap
intervals (10,000 resamples, :mod:`cxrdata.evaluate.bootstrap`); the average row is the mean of the
class means, as in the paper's tables.
"""

from __future__ import annotations

import csv
import json
import math
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from numpy.typing import NDArray
from rich.table import Table

from cxrdata.errors import CxrdataError
from cxrdata.evaluate.bootstrap import CONFIDENCE, N_RESAMPLES, ClassSummary, bootstrap_ci, bootstrap_means
from cxrdata.evaluate.grounding import Interpolation, box_mask, evaluate_heatmap, oracle_heatmap, score

BOXES_FORMAT = "cxrdata-boxes/1"  # predicted boxes per record (--boxes)
BOX_TOLERANCE = 1e-6  # float32 storage of a box exactly on the border
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@cache
def _tables() -> dict[str, Any]:
    return yaml.safe_load(resources.files("cxrdata.evaluate").joinpath("grounding_tables.yaml").read_text())


def heatmap_name(record_id: str) -> str:
    """The file name of a record's heatmap: ``<id with [^A-Za-z0-9._-] -> _>.npy``."""
    return _UNSAFE.sub("_", record_id) + ".npy"


def write_heatmap(folder: str | Path, record_id: str, heatmap: NDArray) -> Path:
    """Store one record's heatmap in the layout this module reads (2D, square, float32)."""
    array = np.asarray(heatmap, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"heatmap of {record_id!r} must be a square 2D array, got shape {array.shape}")
    path = Path(folder) / heatmap_name(record_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=False)
    return path


@dataclass(frozen=True)
class GroundingRecord:
    """One (image, phrase or prompt) pair to score."""

    id: str
    split: str
    class_name: str
    boxes: NDArray[np.float64]  # (N, 4) canonical
    width: int
    height: int


@dataclass
class GroundingData:
    config: str
    records: list[GroundingRecord]
    class_column: str
    skipped_no_box: list[str] = field(default_factory=list)


def _config_dir(data: Path, config: str | None) -> tuple[str, Path]:
    """Resolve ``--data`` (a build OUT, its ``data/`` folder, or one config's folder) and ``--config``."""
    if not data.is_dir():
        raise CxrdataError(f"{data} does not exist or is not a folder")
    if any(data.glob("*.parquet")):
        if config not in (None, data.name):
            raise CxrdataError(f"{data} holds the shards of config {data.name!r}, not {config!r}")
        return data.name, data
    base = data / "data" if (data / "data").is_dir() else data
    configs = sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
    if not configs:
        raise CxrdataError(f"no Parquet shards under {base}")
    if config is None:
        if len(configs) > 1:
            raise CxrdataError(f"{base} holds several configs ({', '.join(configs)}); choose one with --config")
        config = configs[0]
    if config not in configs:
        raise CxrdataError(f"no config {config!r} under {base}; found: {', '.join(configs)}")
    return config, base / config


def _boxes(row: dict[str, Any], box_column: str) -> list[Any]:
    if box_column == "boxes":
        return list(row["boxes"] or [])
    return [r["box"] for r in row["regions"] or [] if r.get("box") is not None]


def _check_boxes(record_id: str, raw: list[Any]) -> NDArray[np.float64]:
    boxes = np.array([[float("nan") if v is None else float(v) for v in box] for box in raw], dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise CxrdataError(f"record {record_id}: boxes must be [x_min, y_min, x_max, y_max], got {raw!r}")
    for box in boxes:
        if not np.isfinite(box).all() or box.min() < -BOX_TOLERANCE or box.max() > 1 + BOX_TOLERANCE:
            raise CxrdataError(f"record {record_id}: box {box.tolist()} is not inside [0, 1] "
                               "(boxes must be normalised to the original image)")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise CxrdataError(f"record {record_id}: box {box.tolist()} has no area")
    return np.clip(boxes, 0.0, 1.0)


def load_records(data: str | Path, config: str | None = None, split: str | None = None,
                 classes: Sequence[str] | None = None) -> GroundingData:
    """The records of one config with boxes (see the module docstring), optionally one split and some classes."""
    config, folder = _config_dir(Path(data), config)
    files = sorted(folder.glob("*.parquet"))
    names = pq.read_schema(files[0]).names
    class_column = next((c for c in _tables()["class_columns"] if c in names), None)
    box_column = next((c for c in ("boxes", "regions") if c in names), None)
    if class_column is None or box_column is None:
        raise CxrdataError(f"config {config!r} has no boxes and class to evaluate (needs 'boxes' or 'regions' "
                           f"and one of {', '.join(_tables()['class_columns'])}; columns: {', '.join(names)})")
    missing = [c for c in ("id", "split", "original_width", "original_height") if c not in names]
    if missing:
        raise CxrdataError(f"config {config!r} lacks column(s) {', '.join(missing)}")
    columns = ["id", "split", class_column, box_column, "original_width", "original_height"]
    rows = [row for path in files for row in pq.read_table(path, columns=columns).to_pylist()]
    present_splits = sorted({str(r["split"]) for r in rows})
    if split is not None:
        if split not in present_splits:
            raise CxrdataError(f"config {config!r} has no split {split!r}; found: {', '.join(present_splits)}")
        rows = [r for r in rows if r["split"] == split]
    out = GroundingData(config, [], class_column)
    for row in sorted(rows, key=lambda r: r["id"]):
        record_id, name = str(row["id"]), row[class_column]
        if not name or not str(name).strip():
            raise CxrdataError(f"record {record_id}: no class in column {class_column!r}")
        raw = _boxes(row, box_column)
        if not raw:
            out.skipped_no_box.append(record_id)
            continue
        width, height = row["original_width"], row["original_height"]
        if not width or not height or width <= 0 or height <= 0:
            raise CxrdataError(f"record {record_id}: original size {width}x{height} is not usable")
        out.records.append(GroundingRecord(record_id, str(row["split"]), str(name), _check_boxes(record_id, raw),
                                           int(width), int(height)))
    if classes:
        out.records = _filter_classes(out.records, classes, config)
    if not out.records:
        raise CxrdataError(f"config {config!r}: no record with a box to evaluate")
    return out


def _filter_classes(records: list[GroundingRecord], classes: Sequence[str], config: str) -> list[GroundingRecord]:
    present = {r.class_name.lower(): r.class_name for r in records}
    unknown = [c for c in classes if c.strip().lower() not in present]
    if unknown:
        raise CxrdataError(f"unknown class(es) {', '.join(map(repr, unknown))} in config {config!r}; "
                           f"classes present: {', '.join(sorted(present.values()))}")
    wanted = {c.strip().lower() for c in classes}
    return [r for r in records if r.class_name.lower() in wanted]


def class_order(names: Iterable[str]) -> list[str]:
    """Classes in the paper's table order (case-insensitive), then the rest alphabetically."""
    rank = {name.lower(): k for k, name in enumerate(_tables()["class_order"])}
    return sorted(set(names), key=lambda n: (rank.get(n.lower(), len(rank)), n))


def load_heatmap(folder: Path, record_id: str) -> NDArray[np.float32]:
    """One record's heatmap; a malformed file raises :class:`CxrdataError` naming it."""
    path = folder / heatmap_name(record_id)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CxrdataError(f"{path}: not a readable .npy heatmap ({exc})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[0] != array.shape[1] or array.size == 0:
        raise CxrdataError(f"{path}: a heatmap must be a square 2D array, got shape {getattr(array, 'shape', None)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise CxrdataError(f"{path}: dtype {array.dtype} is not numeric")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise CxrdataError(f"{path}: the heatmap has NaN or infinite values")
    return array


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
        out[str(record_id)] = _check_boxes(str(record_id), raw) if raw else np.zeros((0, 4))
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


def _fmt(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                              else f"{value:.{digits}f}")


def _cell(s: ClassSummary, scale: float, digits: int) -> str:
    return f"{_fmt(s.mean * scale, digits)} [{_fmt(s.ci_low * scale, digits)}, {_fmt(s.ci_high * scale, digits)}]"


def report_table(report: GroundingReport) -> Table:
    """The paper's layout (tables 1 and 3): rows = classes with N, columns CNR and mIoU (%) with 95 % CI."""
    level = f"{report.confidence:.0%}"
    table = Table(title=f"Phrase grounding on {report.config} ({', '.join(report.splits)}), {report.method}; "
                        f"mean [{level} bootstrap CI, {report.n_resamples} resamples]", title_justify="left")
    table.add_column("Classes")
    table.add_column("CNR", justify="right")
    table.add_column("mIoU (%)", justify="right")
    for row in report.rows:
        table.add_row(f"{row.name} (N={row.n})", _cell(row.cnr, 1, 2), _cell(row.miou, 100, 1))
    table.add_row("Average", _fmt(report.average_cnr, 2), _fmt(report.average_miou * 100, 1), style="bold")
    return table


CSV_COLUMNS = ("class", "n", "cnr", "cnr_ci_low", "cnr_ci_high", "miou", "miou_ci_low", "miou_ci_high", "nan_cnr")


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def write_report(report: GroundingReport, csv_path: str | Path) -> tuple[Path, Path]:
    """The table as CSV (mIoU as a fraction; last row ``Average``) and everything, per record too, as JSON
    beside it (same stem, ``.json``); non-finite numbers are written as the strings ``inf``/``nan``."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in report.rows:
            writer.writerow([r.name, r.n, r.cnr.mean, r.cnr.ci_low, r.cnr.ci_high,
                             r.miou.mean, r.miou.ci_low, r.miou.ci_high, r.nan_cnr])
        writer.writerow(["Average", len(report.scores), report.average_cnr, "", "", report.average_miou, "", "",
                         sum(r.nan_cnr for r in report.rows)])
    doc = {
        "config": report.config, "method": report.method, "splits": report.splits, "seed": report.seed,
        "n_resamples": report.n_resamples, "confidence": report.confidence,
        "classes": [{"class": r.name, "n": r.n, "nan_cnr": r.nan_cnr,
                     "cnr": {k: _json_number(getattr(r.cnr, k)) for k in ("mean", "ci_low", "ci_high")},
                     "miou": {k: _json_number(getattr(r.miou, k)) for k in ("mean", "ci_low", "ci_high")}}
                    for r in report.rows],
        "average": {"cnr": _json_number(report.average_cnr), "miou": _json_number(report.average_miou)},
        "skipped_no_box": report.skipped_no_box,
        "records": [{"id": s.id, "split": s.split, "class": s.class_name, "cnr": _json_number(s.cnr),
                     "miou": _json_number(s.miou)} for s in report.scores],
    }
    json_path = csv_path.with_suffix(".json")
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    return csv_path, json_path
