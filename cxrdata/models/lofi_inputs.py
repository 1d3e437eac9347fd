"""What LoFi reads and is prompted with: letterboxed pixels, a row's report text, the LM's prompt tokens.

The training examples (``cxrdata.train.lofi_data``), the box predictions and the retrieval embeddings all
prepare their inputs here, so a trained model sees at inference exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from cxrdata.targets.box_text import BoxFormat


@dataclass(frozen=True)
class TargetSettings:
    """The recipe's ``targets`` section: the box text format, the report text and the prompt budget."""

    box_format: BoxFormat = "lofi"
    p_grounding: float = 0.5
    report_sections: tuple[str, ...] = ("findings", "impression")
    report_fallback: tuple[str, ...] = ("last_paragraph",)
    report_join: str = " "
    report_prompt: str = "Write the findings and impression of this chest X-ray."
    max_prompt_tokens: int = 192
    max_target_tokens: int = 192


def report_text(row: Mapping[str, Any], targets: TargetSettings) -> str:
    """The report text of a row: its ``report_sections`` joined, else the first non-empty fallback."""
    parts = [str(row[c]).strip() for c in targets.report_sections if row.get(c) and str(row[c]).strip()]
    if parts:
        return targets.report_join.join(parts)
    for column in targets.report_fallback:
        if row.get(column) and str(row[column]).strip():
            return " ".join(str(row[column]).split())
    return ""


def letterbox_image(image: Image.Image, side: int) -> Image.Image:
    """Longest side to ``side``, centred on a black square (LoFi's box grid is this letterboxed square)."""
    image = image.convert("RGB")
    w, h = image.size
    ratio = side / max(w, h)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    canvas = Image.new("RGB", (side, side))
    canvas.paste(image.resize((nw, nh), Image.BICUBIC), ((side - nw) // 2, (side - nh) // 2))
    return canvas


def pixel_tensor(image: Image.Image, side: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    array = np.asarray(letterbox_image(image, side), dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def image_prefix(tokenizer: Any, image_token_id: int, num_tokens: int) -> list[int]:
    """``[bos] <image>×num_tokens`` (no bos when the tokenizer has none)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + [image_token_id] * num_tokens


def prompt_ids(tokenizer: Any, prompt: str, max_tokens: int) -> list[int]:
    """The LM tokens of a prompt as the model reads it (``prompt`` + newline, cut to ``max_tokens``)."""
    return tokenizer(prompt + "\n", add_special_tokens=False)["input_ids"][:max_tokens]
