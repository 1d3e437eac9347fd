"""``cxrdata stats --plot DIR``: the statistics as PNG figures (matplotlib, Agg backend, no timestamps).

Per config: ``<config>-splits.png`` (records and boxes per split), ``<config>-counts.png`` (records per
label group, stacked by split), ``<config>-classes.png`` (records and boxes per class, all splits) when it
has label groups, ``<config>-boxes.png`` (histograms of box width, height and area, the centres' scatter and
histograms) and ``<config>-density.png`` (box centres counted on a ``DENSITY_GRID`` square grid over the
image, :func:`box_density`) when it has boxes, and ``<config>-rejects.png`` (rejects per reason, stacked by
split) when records were rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from numpy.typing import NDArray

from cxrdata.io.stats import BOX_MEASURES, SPLIT_ORDER, ConfigStats

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
WIDTH_INCHES = 8.0
SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}
OTHER_COLOUR = "#7f7f7f"
BINS = 20
DENSITY_GRID = 64


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=DPI)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _ordered(splits: list[str]) -> list[str]:
    return sorted(set(splits), key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))


def _stacked_bars(ax: Axes, frame: pl.DataFrame, label: str, value: str) -> None:
    """Horizontal bars per ``label``, stacked by split (first label at the top)."""
    labels = sorted(set(frame[label]))
    left = [0] * len(labels)
    for split in _ordered(frame["split"].to_list()):
        part = dict(frame.filter(pl.col("split") == split).select(label, value).iter_rows())
        widths = [part.get(x, 0) for x in labels]
        ax.barh(range(len(labels)), widths, left=left, color=SPLIT_COLOURS.get(split, OTHER_COLOUR), label=split)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)


def _with_group(stats: ConfigStats) -> pl.DataFrame:
    """The label groups with their label columns joined into one ``group`` text."""
    return stats.groups.with_columns(group=pl.concat_str([pl.col(c).cast(pl.String) for c in stats.group_by],
                                                         separator=" · "))


def counts_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.group_by or not stats.groups.height:
        return None
    frame = _with_group(stats)
    n = frame["group"].n_unique()
    fig = _figure(WIDTH_INCHES, 1.5 + 0.22 * n)
    ax = fig.add_subplot()
    _stacked_bars(ax, frame, "group", "records")
    ax.set_xlabel("records")
    ax.set_title(f"{config}: records per {' x '.join(stats.group_by)} and split")
    fig.tight_layout()
    return _save(fig, path)


def boxes_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.boxes.height:
        return None
    fig = _figure(WIDTH_INCHES * 1.5, WIDTH_INCHES)
    axes = fig.subplots(2, 3)
    for ax, measure in zip(axes.flat, (*BOX_MEASURES[:3], None, *BOX_MEASURES[3:]), strict=True):
        if measure is None:
            ax.scatter(stats.boxes["center_x"], stats.boxes["center_y"], s=6, alpha=0.5, color=OTHER_COLOUR)
            ax.set_xlim(0, 1)
            ax.set_ylim(1, 0)  # image convention: y down
            ax.set_aspect("equal")
            ax.set_title("centres", fontsize=9)
            continue
        span = None if measure == "area" else (0.0, 1.0)  # areas are small: let them fill the axis
        ax.hist(stats.boxes[measure].to_numpy(), bins=BINS, range=span, color=SPLIT_COLOURS["train"])
        ax.set_title(measure, fontsize=9)
    fig.suptitle(f"{config}: {stats.boxes.height} boxes, [0, 1] of the original image")
    fig.tight_layout()
    return _save(fig, path)


def splits_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.records.height:
        return None
    splits = _ordered(stats.records["split"].to_list())
    records = dict(stats.records.select("split", "records").iter_rows())
    boxes = dict(stats.boxes.group_by("split").len().iter_rows()) if stats.boxes.height else {}
    fig = _figure(WIDTH_INCHES, WIDTH_INCHES / 2)
    for i, (name, counts) in enumerate((("records", records), ("boxes", boxes))):
        ax = fig.add_subplot(1, 2, i + 1)
        values = [counts.get(s, 0) for s in splits]
        ax.bar(splits, values, color=[SPLIT_COLOURS.get(s, OTHER_COLOUR) for s in splits])
        for x, value in enumerate(values):
            ax.annotate(f"{value:,}", (x, value), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{name} per split", fontsize=9)
    fig.suptitle(config)
    fig.tight_layout()
    return _save(fig, path)


def classes_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.group_by or not stats.groups.height:
        return None
    label = " x ".join(stats.group_by)  # a record counts once per group in each split: summing splits is exact
    totals = (_with_group(stats).group_by("group").agg(pl.col("records").sum(), pl.col("boxes").sum())
              .sort("group"))
    names = totals["group"].to_list()
    fig = _figure(WIDTH_INCHES * 1.5, 1.5 + 0.22 * len(names))
    for i, measure in enumerate(("records", "boxes")):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.barh(range(len(names)), totals[measure].to_list(), color=SPLIT_COLOURS["train"])
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_yticks(range(len(names)), names if i == 0 else [""] * len(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"{measure} (all splits)")
    fig.suptitle(f"{config}: records and boxes per {label}")
    fig.tight_layout()
    return _save(fig, path)


def box_density(center_x: NDArray, center_y: NDArray, grid: int = DENSITY_GRID) -> NDArray[np.int64]:
    """Box centres counted on a ``grid`` x ``grid`` map of the image (row = y, column = x); a centre on the
    far edge (1.0) counts in the last cell, so the map sums to the number of boxes."""
    def cell(v: NDArray) -> NDArray[np.int64]:
        return np.clip(np.floor(np.asarray(v, dtype=np.float64) * grid), 0, grid - 1).astype(np.int64)

    density = np.zeros((grid, grid), dtype=np.int64)
    np.add.at(density, (cell(center_y), cell(center_x)), 1)
    return density


def density_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.boxes.height:
        return None
    density = box_density(stats.boxes["center_x"].to_numpy(), stats.boxes["center_y"].to_numpy())
    fig = _figure(WIDTH_INCHES * 0.75, WIDTH_INCHES * 0.75)
    ax = fig.add_subplot()
    shown = ax.imshow(density, extent=(0, 1, 1, 0), cmap="magma", interpolation="nearest")
    fig.colorbar(shown, ax=ax, label="box centres per cell")
    ax.set_title(f"{config}: {int(density.sum())} box centres, {DENSITY_GRID}x{DENSITY_GRID} grid", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def rejects_figure(stats: ConfigStats, config: str, path: Path) -> Path | None:
    if not stats.rejects.height:
        return None
    fig = _figure(WIDTH_INCHES, 1.5 + 0.3 * stats.rejects["reason"].n_unique())
    ax = fig.add_subplot()
    _stacked_bars(ax, stats.rejects, "reason", "records")
    ax.set_xlabel("records")
    ax.set_title(f"{config}: rejects per reason and split")
    fig.tight_layout()
    return _save(fig, path)


def write_plots(stats: ConfigStats, config: str, folder: Path) -> list[Path]:
    """The figures of one config in ``folder``; returns the files written."""
    written = [splits_figure(stats, config, folder / f"{config}-splits.png"),
               counts_figure(stats, config, folder / f"{config}-counts.png"),
               classes_figure(stats, config, folder / f"{config}-classes.png"),
               boxes_figure(stats, config, folder / f"{config}-boxes.png"),
               density_figure(stats, config, folder / f"{config}-density.png"),
               rejects_figure(stats, config, folder / f"{config}-rejects.png")]
    return [p for p in written if p is not None]
