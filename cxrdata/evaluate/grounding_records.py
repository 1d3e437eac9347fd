"""The records ``cxrdata eval grounding`` scores: rows of one built config with boxes and a class.

Records: every row of one config whose rows carry boxes and a class: ``boxes`` (a list of canonical
``[x_min, y_min, x_max, y_max]``) or else ``regions`` (structs with a ``box``), and the first class
column present of ``grounding_tables.yaml``'s ``class_columns`` (``category`` for ms-cxr and
ms-cxr-loc, ``class_name`` for vindr-prompts). Boxes are normalised to ``original_width`` x
``original_height``, the grid the metrics are computed on. ``--data`` is resolved by
:func:`cxrdata.io.layout.read_build`, as for every command that reads shards.

A box outside [0, 1] or without area, a row without a class, or an unknown class in ``classes`` raises
:class:`CxrdataError`; rows with no box at all are listed (``skipped_no_box``), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from cxrdata.errors import CxrdataError
from cxrdata.io.layout import read_build
from cxrdata.yamlfiles import load_yaml

BOX_TOLERANCE = 1e-6  # float32 storage of a box exactly on the border


@cache
def _tables() -> dict[str, Any]:
    return load_yaml(resources.files("cxrdata.evaluate").joinpath("grounding_tables.yaml").read_text())


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


def _boxes(row: dict[str, Any], box_column: str) -> list[Any]:
    if box_column == "boxes":
        return list(row["boxes"] or [])
    return [r["box"] for r in row["regions"] or [] if r.get("box") is not None]


def check_boxes(record_id: str, raw: list[Any]) -> NDArray[np.float64]:
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
    built = read_build(Path(data), config)
    config, files, names = built.name, built.split_files(split), built.columns
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
        out.records.append(GroundingRecord(record_id, str(row["split"]), str(name), check_boxes(record_id, raw),
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


