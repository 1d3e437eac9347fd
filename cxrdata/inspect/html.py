"""The HTML gallery: ONE self-contained page (no external file, script, font or link) of the chosen records.

Each record is a JPEG thumbnail (:mod:`cxrdata.inspect.thumbnails`) under an SVG overlay in normalised
image coordinates (``viewBox = 0 0 1 1``, stretched over the image: boxes as ``rect``, Gaussians as
1σ/2σ ``ellipse``), optional heatmap layers (:mod:`cxrdata.inspect.overlays`), its id, split and caption
lines; a caption line that is a region phrase (or, for one-phrase records, every line) lists the boxes it
grounds, highlighted on hover and click. Shapes are coloured by class (box label, pathology or category;
Gaussians by location term), one colour per legend entry. Filters, search and toggles:
:mod:`cxrdata.inspect.gallery_assets`.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cxrdata.errors import Rejected
from cxrdata.inspect.colours import Colour, assign, hex_colour
from cxrdata.inspect.gallery_assets import SCRIPT, STYLE
from cxrdata.inspect.overlays import Layer
from cxrdata.inspect.panels import Mark, Panel
from cxrdata.inspect.thumbnails import THUMBNAIL_SIDE, data_uri, thumbnail

LICENCE = ("Credentialed data (PhysioNet / BIMCV data use agreements): this page holds the images themselves. "
           "Do not share or upload it.")
FACETS = ("split", "class", "location", "reader")
LAYER_NAMES = {"boxes": "boxes", "gaussians": "Gaussians", "lut": "LUT Gaussians", "heatmap": "model heatmaps"}

LayerMaker = Callable[[Panel], Layer | None]


@dataclass(frozen=True)
class Gallery:
    """What a page shows besides its records: layer makers and the thumbnail size (0: stored bytes as they are)."""

    layers: tuple[LayerMaker, ...] = ()
    thumbnail_side: int = THUMBNAIL_SIDE


def mark_key(mark: Mark) -> str:
    """A box's legend key in the gallery: its class."""
    return mark.label or mark.key


def _attr(value: object) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), quote=True)


def _image(panel: Panel, side: int) -> str:
    try:
        stored = panel.image.get("bytes") if isinstance(panel.image, dict) else None
        data = stored if side == 0 and stored else thumbnail(panel.image, side or THUMBNAIL_SIDE)
    except Rejected as exc:
        return f'<p class="warning">{html.escape(f"{exc.reason}: {exc.detail}")}</p>'
    return f'<img class="thumb" alt="{_attr(panel.id)}" src="{data_uri(data)}">'


def _svg(panel: Panel, colours: dict[str, Colour]) -> str:
    shapes = []
    for blob in panel.blobs:
        colour = hex_colour(colours[blob.key])
        for k, fill in ((2, "none"), (1, colour)):
            shapes.append(f'<ellipse data-key="{_attr(blob.key)}" cx="{blob.mu_x:.4f}" cy="{blob.mu_y:.4f}" '
                          f'rx="{k * blob.sigma_x:.4f}" ry="{k * blob.sigma_y:.4f}" stroke="{colour}" fill="{fill}" '
                          f'fill-opacity="0.25" stroke-width="{3 - k}" vector-effect="non-scaling-stroke">'
                          f"<title>{html.escape(blob.key)} ({k}σ)</title></ellipse>")
    for i, mark in enumerate(panel.marks):
        x0, y0, x1, y1 = mark.box
        key = mark_key(mark)
        reader = f' data-reader="{_attr(mark.reader)}"' if mark.reader else ""
        title = key + (f" ({mark.reader})" if mark.reader else "")
        shapes.append(f'<rect data-i="{i}" data-key="{_attr(key)}"{reader} x="{x0:.4f}" y="{y0:.4f}" '
                      f'width="{x1 - x0:.4f}" height="{y1 - y0:.4f}" fill="none" '
                      f'stroke="{hex_colour(colours[key])}" stroke-width="2" vector-effect="non-scaling-stroke">'
                      f"<title>{html.escape(title)}</title></rect>")
    return f'<svg viewBox="0 0 1 1" preserveAspectRatio="none">{"".join(shapes)}</svg>'


def linked_marks(panel: Panel, line: str) -> list[int]:
    """Indices of the boxes a caption line grounds: the regions with that phrase; without region phrases
    (one phrase per record: MS-CXR, prompts), every box."""
    if not any(m.phrase for m in panel.marks):
        return list(range(len(panel.marks)))
    return [i for i, m in enumerate(panel.marks) if m.phrase == line]


def _caption(panel: Panel) -> str:
    items = []
    for line in panel.caption:
        linked = linked_marks(panel, line)
        marks = f' data-marks="{" ".join(map(str, linked))}"' if linked else ""
        items.append(f"<li{marks}>{html.escape(line)}</li>")
    return f'<ul>{"".join(items)}</ul>'


def _layer(layer: Layer) -> str:
    left, top, width, height = layer.place
    return (f'<img class="layer {layer.kind}" alt="" title="{_attr(layer.title)}" src="{layer.uri}" '
            f'style="left:{left:.3f}%;top:{top:.3f}%;width:{width:.3f}%;height:{height:.3f}%">')


def _figure(panel: Panel, colours: dict[str, Colour], gallery: Gallery, found: Counter) -> str:
    width, height = panel.stored_size
    layers = [layer for make in gallery.layers if (layer := make(panel)) is not None]
    found.update(layer.kind for layer in layers)
    text = " ".join([panel.id, *panel.caption]).lower()
    facets = "".join(f' data-{name}="{_attr(panel.facets.get(name, []))}"' for name in FACETS[1:])
    return (f'<figure data-id="{_attr(panel.id)}" data-split="{_attr(panel.split)}"{facets} data-text="{_attr(text)}">'
            f'<div class="frame" style="aspect-ratio: {width} / {height}">{_image(panel, gallery.thumbnail_side)}'
            f'{"".join(_layer(layer) for layer in layers)}{_svg(panel, colours)}</div><figcaption>'
            f'<div class="meta">{html.escape(panel.split)} · {html.escape(panel.id)}</div>{_caption(panel)}'
            "</figcaption></figure>")


def _select(name: str, counts: Counter) -> str:
    options = "".join(f'<option value="{_attr(v)}">{html.escape(v)} ({n})</option>' for v, n in sorted(counts.items()))
    return f'<label>{name} <select name="{name}"><option value="">all</option>{options}</select></label>'


def _controls(panels: list[Panel], layers: Counter) -> str:
    counts = {name: Counter() for name in FACETS}
    for panel in panels:
        counts["split"][panel.split] += 1
        for name in FACETS[1:]:
            counts[name].update(panel.facets.get(name, []))
    selects = "".join(_select(name, counts[name]) for name in FACETS if counts[name])
    present = {"boxes": any(p.marks for p in panels), "gaussians": any(p.blobs for p in panels), **layers}
    toggles = "".join(f'<label><input type="checkbox" name="{name}" checked> {label}</label>'
                      for name, label in LAYER_NAMES.items() if present.get(name))
    return (f'<form id="filters">{selects}<label>search <input type="search" name="q" '
            f'placeholder="words in phrases, sentences, ids"></label>{toggles}'
            f'<span><b id="shown">{len(panels)}</b> of {len(panels)} shown</span></form>')


def gallery_colours(panels: list[Panel]) -> dict[str, Colour]:
    """Legend key -> colour: box classes first, then Gaussian location terms; no colour twice."""
    return assign((mark_key(m) for p in panels for m in p.marks), (b.key for p in panels for b in p.blobs))


def render_html(panels: list[Panel], out: Path, title: str, gallery: Gallery | None = None) -> Counter:
    """Write the page of ``panels`` to ``out``; returns how many records got each kind of layer."""
    gallery = gallery or Gallery()
    colours = gallery_colours(panels)
    legend = "".join(f'<button type="button" data-key="{_attr(k)}"><i class="swatch" '
                     f'style="background:{hex_colour(c)}"></i>{html.escape(k)}</button>' for k, c in colours.items())
    layers: Counter = Counter()
    figures = "".join(_figure(p, colours, gallery, layers) for p in panels)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="warning">{html.escape(LICENCE)}</p>{_controls(panels, layers)}'
            f'<div class="legend">{legend}</div><div class="grid">{figures}</div>'
            f"<script>{SCRIPT}</script></body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return layers
