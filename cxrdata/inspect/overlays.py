"""Heatmap layers over a gallery record: the LUT Gaussians of its locations (``--lut``), a model's heatmap
(``--heatmaps DIR``, the files ``cxrdata heatmaps ...`` writes: :mod:`cxrdata.models.prediction_files`).

Where a layer lies on the image, as the rest of cxrdata reads it: a LUT's ``grid`` x ``grid`` square is
stretched over the whole image (as the build's ``gaussians`` are); a model's square heatmap covers the
centred ``min(W, H)`` square of the image (:func:`cxrdata.imaging.heatmaps.to_image_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cxrdata.anatomy.lut import GaussianLUT
from cxrdata.imaging.heatmaps import minmax_normalise
from cxrdata.inspect.panels import Panel
from cxrdata.inspect.thumbnails import LAYER_SIDE, data_uri, heat_layer
from cxrdata.models.prediction_files import heatmap_name, load_heatmap


@dataclass(frozen=True)
class Layer:
    """One heatmap layer: ``kind`` (``lut`` or ``heatmap``), its PNG data URI, a title, and where it lies
    as ``(left, top, width, height)`` in percent of the image."""

    kind: str
    uri: str
    title: str
    place: tuple[float, float, float, float]


def lut_layer(panel: Panel, lut: GaussianLUT) -> Layer | None:
    """The pixelwise maximum of the LUT heatmaps of the record's locations that the LUT has (None: none)."""
    terms = [t for t in panel.facets.get("location", []) if t in lut.entries]
    if not terms:
        return None
    width, height = panel.stored_size
    scale = LAYER_SIDE / max(width, height)
    side_w, side_h = max(1, round(width * scale)), max(1, round(height * scale))
    heat = np.max([lut.heatmap(t, side_h, side_w) for t in terms], axis=0)
    return Layer("lut", data_uri(heat_layer(heat, cv2.COLORMAP_VIRIDIS)), "LUT: " + ", ".join(terms),
                 (0.0, 0.0, 100.0, 100.0))


def heatmap_layer(panel: Panel, folder: Path) -> Layer | None:
    """The record's model heatmap in ``folder`` (min-max normalised), None when it has none."""
    if not (folder / heatmap_name(panel.id)).is_file():
        return None
    heat = minmax_normalise(load_heatmap(folder, panel.id))
    width, height = panel.stored_size
    side = min(width, height)
    place = (100 * (width - side) / 2 / width, 100 * (height - side) / 2 / height, 100 * side / width,
             100 * side / height)
    return Layer("heatmap", data_uri(heat_layer(heat)), f"model heatmap {heatmap_name(panel.id)}", place)
