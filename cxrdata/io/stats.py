"""What a written config holds: counts per split x label (x location), box statistics, rejects per reason.

Computed from the shards and rejects files themselves (never from the build's own counters), so the
manifest's ``statistics``, the dataset card and ``cxrdata stats`` describe what is really on disk. The
image column is never read.

Label groups depend on the columns a config has (first match wins):

* ``pathology`` + ``locations`` (prompt configs): one count per (split, pathology, location); a record
  counts once under each distinct location it names (``(none)`` when it names none): seed 003's figure 5.
* ``category`` (MS-CXR): per (split, category).
* ``regions`` (VinDr-CXR, PadChest-GR, Chest ImaGenome): per (split, label), a ``"a; b"`` label counting
  under ``a`` and ``b``; ``records`` have at least one region with the label, ``boxes`` count its boxes.
* ``chexpert`` (MIMIC-CXR): per (split, chexpert_positive), the labels marked positive (1.0).

``boxes`` in a group row counts the boxes of those records (regions: of that label). Box statistics
use every canonical box (``boxes`` column or non-null ``regions[].box``): width, height, area and centre,
all in [0, 1] of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

SPLIT_ORDER = ("train", "validation", "test")
NO_LOCATION = "(none)"
QUANTILES = {"min": 0.0, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}
CORNERS = ("x0", "y0", "x1", "y1")
BOX_MEASURES = ("width", "height", "area", "center_x", "center_y")
DIGITS = 6
COLUMNS = frozenset({"split", "pathology", "locations", "category", "regions", "boxes", "chexpert"})


@dataclass
class ConfigStats:
    """The frames behind a config's statistics (tables and plots use these; the manifest gets ``to_dict``)."""

    records: pl.DataFrame  # split, records
    group_by: list[str]  # the label columns of ``groups`` (e.g. ["pathology", "location"])
    groups: pl.DataFrame  # split, *group_by, records, boxes
    boxes: pl.DataFrame  # split, width, height, area, center_x, center_y (one row per box)
    rejects: pl.DataFrame  # split, reason, records

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": {r["split"]: r["records"] for r in self.records.iter_rows(named=True)},
            "groups": {"by": self.group_by, "rows": self.groups.to_dicts()},
            "boxes": box_summary(self.boxes),
            "rejects": {
                "by_reason": {r["reason"]: r["records"] for r in
                              self.rejects.group_by("reason").agg(pl.col("records").sum()).sort("reason").to_dicts()},
                "rows": self.rejects.to_dicts(),
            },
        }


def _split_rank() -> pl.Expr:
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return pl.col("split").replace_strict(order, default=len(order), return_dtype=pl.Int32)


def _sorted(frame: pl.DataFrame, *keys: str) -> pl.DataFrame:
    return frame.with_columns(_rank=_split_rank()).sort(["_rank", "split", *keys]).drop("_rank")


def _read(data_dir: Path) -> pl.DataFrame:
    """The shards' columns that statistics use (never the image or report text), in file order."""
    files = sorted(data_dir.glob("*.parquet"))
    frames = []
    for path in files:
        names = [n for n in pq.read_schema(path).names if n in COLUMNS]
        frames.append(pl.read_parquet(path, columns=names))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame({"split": []}, {"split": pl.String})


def _groups(frame: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    n_boxes = pl.col("boxes").list.len().fill_null(0) if "boxes" in frame.columns else pl.lit(0)
    indexed = frame.with_row_index("_row")
    if {"pathology", "locations"} <= set(frame.columns):
        by = ["pathology", "location"]
        rows = indexed.select("split", "pathology", n_boxes.alias("_boxes"),
                              location=pl.col("locations").list.unique(maintain_order=True))
        rows = rows.with_columns(pl.when(pl.col("location").list.len() > 0).then(pl.col("location"))
                                 .otherwise(pl.lit([NO_LOCATION]))).explode("location")
        grouped = rows.group_by("split", *by).agg(records=pl.len(), boxes=pl.col("_boxes").sum())
    elif "category" in frame.columns:
        by = ["category"]
        grouped = indexed.group_by("split", "category").agg(records=pl.len(), boxes=n_boxes.sum())
    elif "regions" in frame.columns:
        by = ["label"]
        regions = (indexed.select("_row", "split", "regions").explode("regions").drop_nulls("regions")
                   .select("_row", "split", label=pl.col("regions").struct.field("label").fill_null("").str.split("; "),
                           has_box=pl.col("regions").struct.field("box").is_not_null())
                   .explode("label"))
        grouped = regions.group_by("split", "label").agg(records=pl.col("_row").n_unique(),
                                                         boxes=pl.col("has_box").sum())
    elif "chexpert" in frame.columns:
        by = ["chexpert_positive"]
        labels = indexed.select("split", pl.col("chexpert")).unnest("chexpert")
        # positives counted per split first: the long form of 377,110 x 14 labels would be 5.3 M rows
        counts = labels.group_by("split").agg((pl.col(c) == 1.0).sum() for c in labels.columns if c != "split")
        grouped = (counts.unpivot(index="split", variable_name=by[0], value_name="records")
                   .filter(pl.col("records") > 0).with_columns(boxes=pl.lit(0)))
    else:
        return [], pl.DataFrame(schema={"split": pl.String, "records": pl.UInt32, "boxes": pl.Int64})
    grouped = grouped.with_columns(pl.col("records").cast(pl.Int64), pl.col("boxes").cast(pl.Int64))
    return by, _sorted(grouped, *by)


def _boxes(frame: pl.DataFrame) -> pl.DataFrame:
    if "boxes" in frame.columns:
        boxes = frame.select("split", box=pl.col("boxes")).explode("box")
    elif "regions" in frame.columns:
        boxes = (frame.select("split", "regions").explode("regions").drop_nulls("regions")
                 .select("split", box=pl.col("regions").struct.field("box")))
    else:
        boxes = pl.DataFrame(schema={"split": pl.String, "box": pl.List(pl.Float64)})
    box = pl.col("box").cast(pl.List(pl.Float64))
    boxes = boxes.drop_nulls("box").select("split", *(box.list.get(i).alias(c) for i, c in enumerate(CORNERS)))
    return boxes.select(
        "split",
        width=pl.col("x1") - pl.col("x0"),
        height=pl.col("y1") - pl.col("y0"),
        area=(pl.col("x1") - pl.col("x0")) * (pl.col("y1") - pl.col("y0")),
        center_x=(pl.col("x0") + pl.col("x1")) / 2,
        center_y=(pl.col("y0") + pl.col("y1")) / 2,
    )


def read_rejects(rejects_dir: Path | None) -> pl.DataFrame:
    """split, reason, records: the rejects files of one config, counted (none for shards outside a build)."""
    files = sorted(rejects_dir.glob("*.parquet")) if rejects_dir is not None else []
    if not files:
        return pl.DataFrame(schema={"split": pl.String, "reason": pl.String, "records": pl.Int64})
    frame = pl.concat([pl.read_parquet(p, columns=["split", "reason"]) for p in files])
    counted = frame.with_columns(pl.col("split").fill_null("(none)")).group_by("split", "reason").agg(
        records=pl.len().cast(pl.Int64))
    return _sorted(counted, "reason")


def config_stats(data_dir: Path, rejects_dir: Path | None) -> ConfigStats:
    """Statistics of the config whose shards are in ``data_dir`` and rejects in ``rejects_dir``."""
    frame = _read(data_dir)
    records = _sorted(frame.group_by("split").agg(records=pl.len().cast(pl.Int64)))
    by, groups = _groups(frame) if frame.height else ([], pl.DataFrame())
    return ConfigStats(records, by, groups, _boxes(frame) if frame.height else _boxes(pl.DataFrame()),
                       read_rejects(rejects_dir))


def box_summary(boxes: pl.DataFrame) -> dict[str, Any]:
    """Box count per split, and the mean and quantiles of each measure over every box."""
    per_split = {r["split"]: r["n"] for r in _sorted(boxes.group_by("split").agg(n=pl.len())).iter_rows(named=True)}
    summary: dict[str, Any] = {"count": boxes.height, "per_split": per_split, "measures": {}}
    if not boxes.height:
        return summary
    for measure in BOX_MEASURES:
        column = boxes[measure]
        values = {name: round(float(column.quantile(q, "linear")), DIGITS) for name, q in QUANTILES.items()}
        summary["measures"][measure] = {"mean": round(float(column.mean()), DIGITS), **values}
    return summary


def statistics(root: Path, config: str) -> dict[str, Any]:
    """The manifest's ``statistics`` of one config of the build in ``root`` (OUT)."""
    return config_stats(root / "data" / config, root / "rejects" / config).to_dict()


def splits_of(stats: dict[str, Any]) -> list[str]:
    """The splits of a statistics dict, in canonical order."""
    names = set(stats.get("records", {})) | {r["split"] for r in stats.get("groups", {}).get("rows", [])}
    return sorted(names, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))


def group_table(stats: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the label groups pivoted to one column per split: ``*by, *splits, total[, boxes]``
    (``boxes`` only for configs with boxes)."""
    by, splits = stats["groups"]["by"], splits_of(stats)
    cells: dict[tuple[str, ...], dict[str, int]] = {}
    for row in stats["groups"]["rows"]:
        key = tuple(str(row[k]) for k in by)
        entry = cells.setdefault(key, {"boxes": 0})
        entry[row["split"]] = entry.get(row["split"], 0) + row["records"]
        entry["boxes"] += row["boxes"]
    with_boxes = bool(stats["boxes"]["count"])
    rows = [[*key, *(entry.get(s, 0) for s in splits), sum(entry.get(s, 0) for s in splits),
             *([entry["boxes"]] if with_boxes else [])] for key, entry in sorted(cells.items())]
    return [*by, *splits, "total", *(["boxes"] if with_boxes else [])], rows


def box_table(stats: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the box measures: ``measure, mean, min, p05 ... max``."""
    measures = stats["boxes"].get("measures", {})
    header = ["measure", "mean", *QUANTILES]
    return header, [[m, *(measures[m][k] for k in header[1:])] for m in BOX_MEASURES if m in measures]
