"""The HTML preview: ONE self-contained page (no external file, script or font) of the chosen records.

Each record is its image inlined as a data URI (the stored JPEG/PNG bytes as they are; a path-mode
record's file decoded and inlined as PNG), an SVG overlay in the stored image's pixel coordinates
(``viewBox = 0 0 image_width image_height``: boxes as ``rect``, Gaussians as 1σ/2σ ``ellipse``), and
its id, split and every caption line (prompt, phrase, region phrases) as text.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import cv2

from cxrdata.errors import Rejected
from cxrdata.inspect.colours import Colour, assign, hex_colour
from cxrdata.inspect.panels import Panel, load_pixels

MAX_SIDE = 1024  # path-mode images are shrunk to this before inlining
LICENCE = ("Credentialed data (PhysioNet / BIMCV data use agreements): this page holds the images themselves. "
           "Do not share or upload it.")
STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; background: #f6f4ee; color: #222; margin: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; }
figure { margin: 0; background: #101010; color: #eee; border-radius: 4px; overflow: hidden; }
.frame { position: relative; width: 100%; }
.frame img, .frame svg { position: absolute; inset: 0; width: 100%; height: 100%; }
figcaption { padding: 6px 8px; } .meta { color: #999; font-size: 11px; word-break: break-all; }
.caption { margin: 2px 0; } .legend span { display: inline-block; margin: 0 12px 4px 0; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.warning { color: #a00; }
"""


def _data_uri(panel: Panel) -> str:
    data = panel.image.get("bytes")
    if not data:
        ok, buffer = cv2.imencode(".png", load_pixels(panel.image, max_side=MAX_SIDE))
        data = buffer.tobytes() if ok else b""
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _svg(panel: Panel, colours: dict[str, Colour]) -> str:
    width, height = panel.stored_size
    shapes = []
    for blob in panel.blobs:
        colour, cx, cy = hex_colour(colours[blob.key]), blob.mu_x * width, blob.mu_y * height
        for k, fill in ((2, "none"), (1, colour)):
            shapes.append(f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{k * blob.sigma_x * width:.1f}" '
                          f'ry="{k * blob.sigma_y * height:.1f}" stroke="{colour}" fill="{fill}" fill-opacity="0.25" '
                          f'stroke-width="{3 - k}" vector-effect="non-scaling-stroke">'
                          f"<title>{html.escape(blob.key)} ({k}σ)</title></ellipse>")
    for mark in panel.marks:
        x0, y0, x1, y1 = mark.box
        shapes.append(f'<rect x="{x0 * width:.1f}" y="{y0 * height:.1f}" width="{(x1 - x0) * width:.1f}" '
                      f'height="{(y1 - y0) * height:.1f}" fill="none" stroke="{hex_colour(colours[mark.key])}" '
                      f'stroke-width="2" vector-effect="non-scaling-stroke">'
                      f"<title>{html.escape(mark.key)}</title></rect>")
    return (f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(shapes)}</svg>')


def _figure(panel: Panel, colours: dict[str, Colour]) -> str:
    width, height = panel.stored_size
    try:
        image = f'<img alt="{html.escape(panel.id)}" src="{_data_uri(panel)}">'
    except Rejected as exc:
        image = f'<p class="warning">{html.escape(f"{exc.reason}: {exc.detail}")}</p>'
    captions = "".join(f'<p class="caption">{html.escape(line)}</p>' for line in panel.caption)
    return (f'<figure data-id="{html.escape(panel.id)}"><div class="frame" style="aspect-ratio: {width} / {height}">'
            f"{image}{_svg(panel, colours)}</div><figcaption>"
            f'<div class="meta">{html.escape(panel.split)} · {html.escape(panel.id)}</div>{captions}'
            "</figcaption></figure>")


def render_html(panels: list[Panel], out: Path, title: str) -> None:
    """Write the page of ``panels`` to ``out``."""
    colours = assign((m.key for p in panels for m in p.marks), (b.key for p in panels for b in p.blobs))
    legend = "".join(f'<span><i class="swatch" style="background:{hex_colour(c)}"></i>{html.escape(k)}</span>'
                     for k, c in colours.items())
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="warning">{html.escape(LICENCE)}</p><div class="legend">{legend}</div>'
            f'<div class="grid">{"".join(_figure(p, colours) for p in panels)}</div></body></html>\n')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
