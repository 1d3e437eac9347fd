"""Presenting a Gaussian LUT: a rich table (``cxrdata lut show``) and a figure (``cxrdata lut plot``).

The figure follows seed 003's figure 3: one panel per location term, each Gaussian drawn as its ±1σ
(solid) and ±2σ (dashed) ellipses over its heatmap, on a schematic chest. The chest is drawn from the
LUT itself, so it always sits where the table's anatomy is: the lungs fill the boxes of "right" and
"left" (μ ∓ divisor/2 · σ), their lower edges are the diaphragm domes, and the heart is the ellipse in
the box of "cardiomegaly". Image convention: the patient's right is on the image left. A last panel
overlays the ±1σ ellipses of every single-component term. Rendering uses matplotlib's Agg backend and
a PNG without timestamps, so the same LUT gives the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

from cxrdata.anatomy.gaussian import params_to_boxes
from cxrdata.anatomy.lut import GaussianLUT, location_mapping

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.path import Path as MplPath

COLUMNS = 7
PANEL_INCHES = 2.0
DPI = 100
HEATMAP_SIDE = 128
# Panel colour of a term, by its first word; whole-region terms take "other".
COLOURS = {"right": "#1f77b4", "left": "#d62728", "bilateral": "#9467bd", "bibasilar": "#9467bd",
           "other": "#2ca02c"}


def figure_size(n_terms: int, columns: int = COLUMNS, dpi: int = DPI) -> tuple[int, int]:
    """Pixel ``(width, height)`` of the figure for ``n_terms`` panels plus the overview panel."""
    rows = math.ceil((n_terms + 1) / columns)
    return round(columns * PANEL_INCHES * dpi), round(rows * PANEL_INCHES * dpi)


def _colour(term: str) -> str:
    return COLOURS.get(term.split()[0], COLOURS["other"])


def lut_table(lut: GaussianLUT) -> Table:
    """One row per term: its ImaGenome basis, each component's μ and σ (grid units) and box count."""
    table = Table(title=f"Gaussian LUT: {len(lut.entries)} terms on a {lut.grid}x{lut.grid} grid, "
                        f"sigma = range / {lut.sigma_divisor:g}, {lut.skipped_boxes} gold boxes skipped",
                  title_justify="left")
    for name, justify in (("term", "left"), ("basis", "left"), ("components", "left"),
                          ("mu (x, y)", "right"), ("sigma (x, y)", "right"), ("boxes", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    mapping = location_mapping()
    for term, entry in lut.entries.items():
        parts = mapping[term]["components"]
        names = [p["box"] if "box" in p else " + ".join(p["span"]) for p in parts]
        table.add_row(
            term, mapping[term]["basis"], "\n".join(names),
            "\n".join(f"{c[0]:.1f}, {c[1]:.1f}" for c in entry.components),
            "\n".join(f"{c[2]:.1f}, {c[3]:.1f}" for c in entry.components),
            "\n".join(str(n) for n in entry.counts),
        )
    return table


def _lung_path(box: np.ndarray, lateral_left: bool) -> MplPath:
    """A lung outline in its box: apex, curved lateral wall down to the costophrenic angle, dome, medial edge."""
    from matplotlib.path import Path as MplPath

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    lat, med = (x0, x1) if lateral_left else (x1, x0)
    s = -1.0 if lateral_left else 1.0  # direction from medial to lateral
    apex = (med + s * 0.45 * w, y0)
    vertices = [
        (med, y0 + 0.18 * h),  # medial edge, top
        (med, y0 + 0.02 * h), apex, apex,
        (lat, y0 + 0.05 * h), (lat + s * 0.02 * w, y0 + 0.7 * h), (lat, y1),  # lateral wall
        (lat - s * 0.35 * w, y1 - 0.22 * h), (med + s * 0.25 * w, y1 - 0.3 * h), (med, y1 - 0.12 * h),  # dome
        (med, y0 + 0.18 * h),
    ]
    codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4,
             MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4,
             MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.LINETO]
    return MplPath(np.array(vertices, dtype=float), codes)


def _draw_chest(ax: Axes, lut: GaussianLUT) -> None:
    from matplotlib.patches import Ellipse, PathPatch

    def box(term: str) -> np.ndarray:
        return params_to_boxes(lut.params(term)[:1], 1.0, lut.sigma_divisor)[0]

    style = {"facecolor": "#ececec", "edgecolor": "#7f7f7f", "linewidth": 0.8, "zorder": 0}
    right, left = box("right"), box("left")
    # the image left holds the patient's right lung unless this LUT says otherwise
    for lung in (right, left):
        lateral_left = (lung[0] + lung[2]) < (right[0] + right[2] + left[0] + left[2]) / 2
        ax.add_patch(PathPatch(_lung_path(lung, lateral_left), **style))
    heart = box("cardiomegaly")
    ax.add_patch(Ellipse(((heart[0] + heart[2]) / 2, (heart[1] + heart[3]) / 2), heart[2] - heart[0],
                         heart[3] - heart[1], facecolor="#d9d9d9", edgecolor="#7f7f7f", linewidth=0.8, zorder=0))
    bottom = max(right[3], left[3])
    ax.plot([min(right[0], left[0]), max(right[2], left[2])], [bottom, bottom], color="#7f7f7f",
            linewidth=0.6, linestyle=":", zorder=0)


def _draw_gaussian(ax: Axes, params: np.ndarray, colour: str, two_sigma: bool = True) -> None:
    from matplotlib.patches import Ellipse

    for mu_x, mu_y, s_x, s_y in params:
        ax.add_patch(Ellipse((mu_x, mu_y), 2 * s_x, 2 * s_y, fill=False, edgecolor=colour, linewidth=1.2, zorder=3))
        if two_sigma:
            ax.add_patch(Ellipse((mu_x, mu_y), 4 * s_x, 4 * s_y, fill=False, edgecolor=colour, linewidth=0.9,
                                 linestyle="--", zorder=3))
        ax.plot([mu_x], [mu_y], marker="+", color=colour, markersize=4, zorder=4)


def _panel(ax: Axes, lut: GaussianLUT, title: str) -> None:
    ax.set_xlim(0, lut.grid)
    ax.set_ylim(lut.grid, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    _draw_chest(ax, lut)


def plot_lut(lut: GaussianLUT, out: str | Path, columns: int = COLUMNS, dpi: int = DPI) -> Path:
    """Write the LUT figure as PNG (``figure_size`` pixels); returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    terms = lut.terms
    rows = math.ceil((len(terms) + 1) / columns)
    fig = Figure(figsize=(columns * PANEL_INCHES, rows * PANEL_INCHES), dpi=dpi)
    axes = fig.subplots(rows, columns, squeeze=False)
    extent = (0, lut.grid, lut.grid, 0)
    for k, term in enumerate(terms):
        ax, entry = axes.flat[k], lut.entries[term]
        _panel(ax, lut, f"{term}  n={'+'.join(str(n) for n in entry.counts)}")
        colour = _colour(term)
        heat = lut.heatmap(term, HEATMAP_SIDE, HEATMAP_SIDE)
        ax.imshow(np.ma.masked_less(heat, 0.02), extent=extent, cmap="magma_r", vmin=0, vmax=1.4, alpha=0.55,
                  interpolation="bilinear", zorder=1)
        _draw_gaussian(ax, entry.params, colour)
    overview = axes.flat[len(terms)]
    _panel(overview, lut, "all one-component terms (±1σ)")
    for term in terms:
        if not lut.entries[term].is_mixture:
            _draw_gaussian(overview, lut.entries[term].params, _colour(term), two_sigma=False)
    overview.text(0.03 * lut.grid, 0.06 * lut.grid, "R", fontsize=8, fontweight="bold", va="top")
    overview.text(0.97 * lut.grid, 0.06 * lut.grid, "L", fontsize=8, fontweight="bold", va="top", ha="right")
    for ax in axes.flat[len(terms) + 1:]:
        ax.set_axis_off()
    fig.suptitle(f"Gaussian LUT ({lut.grid}x{lut.grid}, sigma = range / {lut.sigma_divisor:g}): "
                 "solid ±1σ, dashed ±2σ", fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.05, hspace=0.22)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out
