"""Small images for the HTML gallery: a record's radiograph as a JPEG thumbnail, a heatmap as a PNG layer.

A thumbnail is the stored image decoded to 8-bit gray, shrunk (OpenCV, ``INTER_AREA``, aspect kept, never
enlarged) so its longest side is at most ``max_side``, and re-encoded as JPEG; boxes are never burned into
it (the page draws them as SVG over it). A heatmap layer is a ``[0, 1]`` map coloured with a colour map,
its alpha the map's value, so where the map is 0 the radiograph shows through.
"""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from cxrdata.inspect.panels import load_pixels

THUMBNAIL_SIDE = 256
JPEG_QUALITY = 80
LAYER_SIDE = 96  # heatmap layers are smooth: this many pixels on their longest side, stretched by the browser
LAYER_ALPHA = 0.75


def shrink(pixels: NDArray, max_side: int) -> NDArray:
    """``pixels`` with the longest side at most ``max_side`` (``INTER_AREA``), unchanged if already that small."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def thumbnail(image: dict[str, Any] | str, max_side: int = THUMBNAIL_SIDE, quality: int = JPEG_QUALITY) -> bytes:
    """The JPEG thumbnail of an image cell (bytes, or the file a path-mode cell references)."""
    pixels = shrink(load_pixels(image, max_side=max_side), max_side)
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode a JPEG thumbnail")
    return buffer.tobytes()


def heat_layer(heat: NDArray, colour_map: int = cv2.COLORMAP_JET) -> bytes:
    """A ``[0, 1]`` map as an RGBA PNG: colour from ``colour_map``, alpha ``LAYER_ALPHA`` x the value."""
    values = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0, 1)
    values = shrink(values, LAYER_SIDE)
    level = np.round(values * 255).astype(np.uint8)
    rgba = cv2.cvtColor(cv2.applyColorMap(level, colour_map), cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = np.round(values * LAYER_ALPHA * 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".png", rgba)
    if not ok:
        raise ValueError("OpenCV could not encode a heatmap layer")
    return buffer.tobytes()


def data_uri(data: bytes) -> str:
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
