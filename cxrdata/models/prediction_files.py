"""The files models write for ``cxrdata eval grounding``: heatmaps (``--heatmaps DIR``) and boxes (``--boxes``).

Heatmaps (``heatmaps ldm``)::

    DIR/<sanitised record id>.npy     one 2D float32 array per record, any square size

The sanitised id replaces every character outside ``[A-Za-z0-9._-]`` with ``_`` (MS-CXR ``<dicom_id>/3`` ->
``<dicom_id>_3.npy``, vindr-prompts ``<image_id>/pleural-effusion`` -> ``<image_id>_pleural-effusion.npy``).

Boxes (``predict lofi-boxes``): a JSON ``{"format": "cxrdata-boxes/1", "records": {"<id>": {"boxes": [[x_min,
y_min, x_max, y_max], ...], ...}}, ...}``, canonical boxes normalised to the original image.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cxrdata.errors import CxrdataError

BOXES_FORMAT = "cxrdata-boxes/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def heatmap_name(record_id: str) -> str:
    """The file name of a record's heatmap: ``<id with [^A-Za-z0-9._-] -> _>.npy``."""
    return _UNSAFE.sub("_", record_id) + ".npy"


def write_heatmap(folder: str | Path, record_id: str, heatmap: NDArray) -> Path:
    """Store one record's heatmap (2D, square, float32)."""
    array = np.asarray(heatmap, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"heatmap of {record_id!r} must be a square 2D array, got shape {array.shape}")
    path = Path(folder) / heatmap_name(record_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=False)
    return path


def load_heatmap(folder: Path, record_id: str) -> NDArray[np.float32]:
    """One record's heatmap; a malformed file raises :class:`CxrdataError` naming it."""
    path = folder / heatmap_name(record_id)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise CxrdataError(f"{path}: not a readable .npy heatmap ({exc})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[0] != array.shape[1] or array.size == 0:
        raise CxrdataError(f"{path}: a heatmap must be a square 2D array, got shape {getattr(array, 'shape', None)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise CxrdataError(f"{path}: dtype {array.dtype} is not numeric")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise CxrdataError(f"{path}: the heatmap has NaN or infinite values")
    return array
