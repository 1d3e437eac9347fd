"""The PNG preview: a grid of records, each its image with boxes and Gaussian ellipses, its text below.

Geometry (what tests rely on): every panel is a ``CELL`` x ``CELL`` image area above a caption area,
filled with ``PANEL_FILL``; panels are ``GAP`` pixels apart on a ``BACKGROUND`` canvas, ``columns =
ceil(sqrt(n))``; a legend of colour keys sits below the grid. The image is scaled to fit its area
(aspect kept, centred); a box ``[x0, y0, x1, y1]`` is drawn at ``x0 * image_width * scale`` (the
stored size, times the display scale), ``LINE`` pixels wide, inside its edges. Gaussians are drawn
as their 1σ (2 px) and 2σ (1 px) ellipses. A record whose image cannot be read shows the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cxrdata.errors import Rejected
from cxrdata.inspect.colours import Colour, assign
from cxrdata.inspect.panels import Panel, load_pixels

CELL = 256
GAP = 8
FONT_SIZE = 11
LINE_HEIGHT = 14
CAPTION_LINES = 4  # text lines under the title line
CAPTION_HEIGHT = 4 + LINE_HEIGHT * (1 + CAPTION_LINES)
LINE = 3
BACKGROUND: Colour = (246, 244, 238)
PANEL_FILL: Colour = (16, 16, 16)
TEXT: Colour = (235, 235, 235)
MUTED: Colour = (150, 150, 150)
LEGEND_TEXT: Colour = (40, 40, 40)
LEGEND_COLUMNS = 4


@dataclass(frozen=True)
class Geometry:
    """Where panels go on the canvas."""

    n: int
    legend_rows: int

    @property
    def columns(self) -> int:
        return max(1, math.ceil(math.sqrt(self.n)))

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.n / self.columns))

    @property
    def size(self) -> tuple[int, int]:
        width = GAP + self.columns * (CELL + GAP)
        height = GAP + self.rows * (CELL + CAPTION_HEIGHT + GAP) + self.legend_rows * LINE_HEIGHT + (
            GAP if self.legend_rows else 0)
        return width, height

    def origin(self, i: int) -> tuple[int, int]:
        """Top-left pixel of panel ``i``'s image area."""
        row, column = divmod(i, self.columns)
        return GAP + column * (CELL + GAP), GAP + row * (CELL + CAPTION_HEIGHT + GAP)


def font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def fit(stored: tuple[int, int]) -> tuple[float, int, int]:
    """Display scale and size of a stored ``(width, height)`` image in a ``CELL`` square."""
    scale = min(CELL / stored[0], CELL / stored[1])
    return scale, max(1, round(stored[0] * scale)), max(1, round(stored[1] * scale))


def box_pixels(box: tuple[float, float, float, float], stored: tuple[int, int]) -> tuple[int, int, int, int]:
    """A canonical box in display pixels of its panel: scaled by the stored size, then the display scale."""
    scale, width, height = fit(stored)
    x0, y0, x1, y1 = (round(v * s * scale) for v, s in zip(box, (*stored, *stored), strict=True))
    return (min(max(x0, 0), width - 1), min(max(y0, 0), height - 1),
            min(max(x1, 0), width - 1), min(max(y1, 0), height - 1))


def draw_image(panel: Panel, colours: dict[str, Colour]) -> Image.Image:
    """The panel's image at display size, with its Gaussians and boxes drawn on it."""
    scale, width, height = fit(panel.stored_size)
    pixels = load_pixels(panel.image, max_side=max(width, height))
    shown = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA) if pixels.shape != (height, width) \
        else pixels
    image = Image.fromarray(np.ascontiguousarray(shown)).convert("RGB")
    draw = ImageDraw.Draw(image)
    stored_w, stored_h = panel.stored_size
    for blob in panel.blobs:
        cx, cy = blob.mu_x * stored_w * scale, blob.mu_y * stored_h * scale
        for k, line in ((2, 1), (1, 2)):
            rx, ry = k * blob.sigma_x * stored_w * scale, k * blob.sigma_y * stored_h * scale
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], outline=colours[blob.key], width=line)
        draw.line([cx - 3, cy, cx + 3, cy], fill=colours[blob.key])
        draw.line([cx, cy - 3, cx, cy + 3], fill=colours[blob.key])
    for mark in panel.marks:
        draw.rectangle(box_pixels(mark.box, panel.stored_size), outline=colours[mark.key], width=LINE)
    return image


def wrap(text: str, width: int, face: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if face.getlength(candidate) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def _caption_lines(panel: Panel, face: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> list[str]:
    lines = [line for text in panel.caption for line in wrap(text, CELL - 8, face)]
    if len(lines) > CAPTION_LINES:
        lines = [*lines[: CAPTION_LINES - 1], lines[CAPTION_LINES - 1] + " …"]
    return lines


def _legend(canvas: ImageDraw.ImageDraw, colours: dict[str, Colour], top: int, width: int,
            face: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    column_width = (width - 2 * GAP) // LEGEND_COLUMNS
    for i, (key, colour) in enumerate(colours.items()):
        row, column = divmod(i, LEGEND_COLUMNS)
        x, y = GAP + column * column_width, top + row * LINE_HEIGHT
        canvas.rectangle([x, y + 2, x + 10, y + 12], fill=colour)
        canvas.text((x + 14, y), key, fill=LEGEND_TEXT, font=face)


def _clip(text: str, width: int, face: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
    while text and face.getlength(text) > width:
        text = text[:-2] + "…"
    return text


def draw_panel(panel: Panel, colours: dict[str, Colour], face: ImageFont.ImageFont | ImageFont.FreeTypeFont
               ) -> Image.Image:
    """One panel: image area (image centred) and caption area; anything drawn outside is clipped."""
    tile = Image.new("RGB", (CELL, CELL + CAPTION_HEIGHT), PANEL_FILL)
    draw = ImageDraw.Draw(tile)
    try:
        image = draw_image(panel, colours)
        tile.paste(image, ((CELL - image.width) // 2, (CELL - image.height) // 2))
    except Rejected as exc:
        for j, line in enumerate(wrap(f"{exc.reason}: {exc.detail}", CELL - 8, face)[:4]):
            draw.text((4, CELL // 2 + j * LINE_HEIGHT), line, fill=TEXT, font=face)
    draw.text((4, CELL + 2), _clip(f"{panel.split} · {panel.id}", CELL - 8, face), fill=MUTED, font=face)
    for j, line in enumerate(_caption_lines(panel, face)):
        draw.text((4, CELL + 2 + (j + 1) * LINE_HEIGHT), _clip(line, CELL - 8, face), fill=TEXT, font=face)
    return tile


def render_grid(panels: list[Panel], out: Path) -> Geometry:
    """Write the PNG grid of ``panels`` to ``out``; returns its geometry."""
    colours = assign((m.key for p in panels for m in p.marks), (b.key for p in panels for b in p.blobs))
    geometry = Geometry(len(panels), math.ceil(len(colours) / LEGEND_COLUMNS))
    canvas = Image.new("RGB", geometry.size, BACKGROUND)
    face = font()
    for i, panel in enumerate(panels):
        canvas.paste(draw_panel(panel, colours, face), geometry.origin(i))
    _legend(ImageDraw.Draw(canvas), colours, GAP + geometry.rows * (CELL + CAPTION_HEIGHT + GAP),
            geometry.size[0], face)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, format="PNG")
    return geometry
