"""What the frozen LDM sees of a stored image: the centred square of its short side (or all of it, ``stretch``),
resampled to the recipe's ``data.image_size``, in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def crop_pixels(width: int, height: int, fit: str) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` of the model input in image pixels."""
    if fit == "stretch":
        return (0, 0, width, height)
    side = min(width, height)
    return ((width - side) // 2, (height - side) // 2, side, side)


def model_crop(image: Any, fit: str) -> np.ndarray:
    """The stored pixels the model sees, before resampling: the centred square of the short side (or the whole
    image for ``stretch``), as a 2-D array. An ``ldm-prompts`` build stores the short side at 512 (recipe
    ``image.fit: shortest``), so at 512 px input this square is the stored pixels themselves, as in the bundle's
    training (shortest side resized to 512, then a centred 512 x 512 crop)."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        arr = np.asarray(image.convert("L"))
    left, top, w, h = crop_pixels(arr.shape[1], arr.shape[0], fit)
    return arr[top:top + h, left:left + w]


def image_tensor(image: Any, size: int, fit: str) -> torch.Tensor:
    """A decoded shard image (PIL) -> ``(1, size, size)`` float32 in [0, 1]: :func:`model_crop`, resampled to
    ``size`` (an identity when the crop already is ``size`` x ``size``)."""
    import torch.nn.functional as F

    arr = model_crop(image, fit)
    peak = 65535.0 if arr.dtype == np.uint16 or arr.max(initial=0) > 255 else 255.0
    crop = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / peak)
    if crop.shape == (size, size):
        return crop[None].clamp(0, 1)
    out = F.interpolate(crop[None, None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0, 1)
