"""A shard row -> what a preview shows: its image, caption text, boxes and Gaussians, each with a colour key.

Which columns mean what, per output schema (see ``schemas/``):

* caption: ``prompt`` (ms-cxr-loc adds the MS-CXR ``phrase``); else ``category: phrase`` (ms-cxr); else the
  distinct ``regions[].phrase`` (VinDr-CXR, PadChest-GR, Chest ImaGenome); else the report impression.
* boxes: ``boxes`` (coloured by ``readers`` when present, else by category / pathology) or
  ``regions[].box`` (coloured by reader for the multi-reader datasets, else by region label).
* Gaussians: ``gaussians`` (per location, components ``[mu_x, mu_y, sigma_x, sigma_y]`` on a
  ``lut_grid`` x ``lut_grid`` map stretched over the image), coloured by location term.
* facets (what the HTML gallery filters on): ``class`` (box labels, pathology / category / class name,
  VinDr image labels, Chest ImaGenome findings marked ``yes``, CheXpert positives), ``location``
  (``locations``, PadChest-GR sentence locations, Chest ImaGenome region names), ``reader`` (box readers,
  VinDr image-label readers).

Boxes are canonical (``[0, 1]`` of the original image); a renderer scales them by the STORED image size
(``image_width`` x ``image_height``) it draws, never by the original size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cxrdata.errors import Rejected
from cxrdata.imaging.dicom import decode_dicom
from cxrdata.imaging.png16 import decode_png16
from cxrdata.imaging.raster import decode_jpeg

READER_COLOURED = frozenset({"vindr", "padchest-gr", "vindr-prompts"})  # schemas whose boxes are per reader
DEFAULT_GRID = 512


@dataclass(frozen=True)
class Mark:
    """A canonical box, its colour key in the PNG grid, and what the HTML gallery knows of it."""

    box: tuple[float, float, float, float]
    key: str
    label: str = ""  # its class (region label, pathology or category): the gallery's colour and toggle
    reader: str = ""
    phrase: str = ""  # the region phrase it grounds (regions only)


@dataclass(frozen=True)
class Blob:
    """One Gaussian component in [0, 1] units of the image, and its colour key (the location term)."""

    mu_x: float
    mu_y: float
    sigma_x: float
    sigma_y: float
    key: str


@dataclass
class Panel:
    """One record as shown: ids, stored size, caption lines, boxes and Gaussians (pixels loaded separately)."""

    id: str
    split: str
    stored_size: tuple[int, int]  # image_width, image_height
    caption: list[str]
    marks: list[Mark] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    image: dict[str, Any] | str = field(default_factory=dict)  # the image cell: {bytes, path}, or a path string
    facets: dict[str, list[str]] = field(default_factory=dict)  # class / location / reader values (see above)


def _unique(values: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def caption(row: dict[str, Any]) -> list[str]:
    """The text shown under a record's image."""
    if row.get("prompt"):
        return [row["prompt"], *([f"phrase: {row['phrase']}"] if row.get("phrase") else [])]
    if row.get("category") is not None:
        return [f"{row['category']}: {row.get('phrase') or ''}"]
    if row.get("regions") is not None:
        phrases = _unique([r.get("phrase") or r.get("label") for r in row["regions"]])
        labels = _unique([label for entry in row.get("image_labels") or [] for label in entry.get("labels") or []])
        return phrases or ([f"(no boxes) labels: {', '.join(labels)}"] if labels else ["(no boxes)"])
    text = row.get("impression") or row.get("findings") or row.get("last_paragraph") or ""
    return [" ".join(str(text).split())] if text else []


def marks(row: dict[str, Any], schema: str) -> list[Mark]:
    """The record's boxes with their colour keys."""
    if row.get("boxes") is not None:
        readers = row.get("readers") or []
        fallback = str(row.get("category") or row.get("pathology") or row.get("class_name") or "box")
        return [Mark(tuple(b), readers[i] if i < len(readers) else fallback,  # type: ignore[arg-type]
                     fallback, str(readers[i]) if i < len(readers) else "")
                for i, b in enumerate(row["boxes"]) if b is not None]
    by_reader = schema in READER_COLOURED
    found = []
    for r in row.get("regions") or []:
        if r.get("box") is None:
            continue
        label = str(r.get("label") or "box")
        found.append(Mark(tuple(r["box"]), str((r.get("reader") if by_reader else r.get("label")) or label),
                          label, str(r.get("reader") or ""), str(r.get("phrase") or label)))
    return found


def _yes_findings(region: dict[str, Any]) -> list[str]:
    """``category|yes|label`` attributes -> their labels (Chest ImaGenome's findings of a region)."""
    return [parts[2] for a in region.get("attributes") or [] if len(parts := str(a).split("|")) == 3
            and parts[1] == "yes"]


def facets(row: dict[str, Any], schema: str, found: list[Mark]) -> dict[str, list[str]]:
    """The values a gallery filters this record on, each facet sorted."""
    regions = row.get("regions") or []
    image_labels = row.get("image_labels") or []
    classes = [m.label for m in found] + [row.get(c) for c in ("pathology", "category", "class_name")]
    classes += [label for entry in image_labels for label in entry.get("labels") or []]
    classes += [label for r in regions for label in _yes_findings(r)]
    classes += [name for name, value in (row.get("chexpert") or {}).items() if value == 1.0]
    locations = list(row.get("locations") or [])
    locations += [loc for s in row.get("sentences") or [] if isinstance(s, dict) for loc in s.get("locations") or []]
    if schema.startswith("imagenome"):
        locations += [r.get("label") for r in regions]
    readers = [m.reader for m in found] + [entry.get("reader") for entry in image_labels]
    return {name: sorted(_unique(values)) for name, values in
            (("class", classes), ("location", locations), ("reader", readers))}


def blobs(row: dict[str, Any], manifest_grid: int | None = None) -> list[Blob]:
    """The Gaussian components of every location, in [0, 1] of the image (grid from the row, else the manifest)."""
    gaussians = row.get("gaussians")
    if not gaussians:
        return []
    grid = float(row.get("lut_grid") or manifest_grid or DEFAULT_GRID)
    locations = row.get("locations") or []
    found = []
    for i, components in enumerate(gaussians):
        key = locations[i] if i < len(locations) else f"location {i}"
        for mu_x, mu_y, sigma_x, sigma_y in components or []:
            found.append(Blob(mu_x / grid, mu_y / grid, sigma_x / grid, sigma_y / grid, key))
    return found


def panel(row: dict[str, Any], schema: str, manifest_grid: int | None = None) -> Panel:
    size = (int(row["image_width"]), int(row["image_height"]))
    found = marks(row, schema)
    return Panel(str(row["id"]), str(row.get("split") or ""), size, caption(row), found,
                 blobs(row, manifest_grid), row.get("image") or {}, facets(row, schema, found))


def load_pixels(image: dict[str, Any] | str, max_side: int = 0) -> np.ndarray:
    """Grayscale uint8 pixels of an image cell: its bytes, or (path mode) the file it references."""
    if isinstance(image, str):  # path mode of a DICOM or 16-bit PNG source
        image = {"bytes": None, "path": image}
    data = image.get("bytes")
    if data:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
        if pixels is None:
            raise Rejected("image_corrupt", "stored image does not decode")
        return pixels
    path = Path(image.get("path") or "")
    if not path.is_file():
        raise Rejected("image_missing", f"{path} does not exist (a path-mode build read on another machine?)")
    suffix = path.suffix.lower()
    if suffix in (".dicom", ".dcm"):
        return decode_dicom(path, max_side=max_side).pixels
    if suffix == ".png":
        return decode_png16(path, max_side=max_side, expect_16bit=False).pixels
    return decode_jpeg(path.read_bytes(), max_side=max_side).pixels
