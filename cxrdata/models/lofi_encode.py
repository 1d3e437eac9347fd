"""A LoFi run's SigLIP embeddings for ``eval retrieval``: pooled image and text-tower embeddings, L2-normalised."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from cxrdata.models.lofi_inputs import pixel_tensor
from cxrdata.models.lofi_run import LoadedRun


def _normalised(loaded: LoadedRun, batches: Iterable[torch.Tensor],
                encode: Callable[[torch.Tensor], torch.Tensor]) -> NDArray[np.float32]:
    device = loaded.device
    out = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for batch in batches:
            out.append(torch.nn.functional.normalize(encode(batch.to(device)).float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def image_embeddings(loaded: LoadedRun, batches: Iterable[Sequence[Any]]) -> NDArray[np.float32]:
    """``(N, D)`` pooled image embeddings of decoded images, given in batches (decoded one batch at a time)."""
    m = loaded.recipe["model"]
    pixels = (torch.stack([pixel_tensor(im, m["image_size"], m["image_mean"], m["image_std"]) for im in batch])
              for batch in batches)
    return _normalised(loaded, pixels, lambda x: loaded.model.encode_images(x)[1])


def text_embeddings(loaded: LoadedRun, texts: Sequence[str], batch_size: int) -> NDArray[np.float32]:
    """``(N, D)`` text embeddings (SigLIP's fixed-length padding, as it was trained)."""
    model, length = loaded.model, loaded.recipe["model"]["text_max_length"]
    ids = (torch.tensor(model.text_tokenizer(list(texts[first:first + batch_size]), padding="max_length",
                                             truncation=True, max_length=length)["input_ids"])
           for first in range(0, len(texts), batch_size))
    return _normalised(loaded, ids, model.encode_texts)
