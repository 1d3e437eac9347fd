"""Where and how a model runs: the device, offline mode, mixed precision, compiled and checkpointed blocks."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn

from cxrdata.errors import CxrdataError


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA device ``local_rank`` (this process's GPU under torchrun) when one is present, else the CPU."""
    if preference == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CxrdataError(f"device {preference!r} asked for, but torch sees no CUDA GPU")
    return device


def hf_offline() -> None:
    """Forbid every Hugging Face download in this process (weights come from local folders only)."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[key] = "1"


PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def run_precision(device: torch.device, recipe: str, override: str | None = None) -> str:
    """The precision a run uses: ``override`` (``--precision``) on any device, else the recipe's on CUDA and
    fp32 on the CPU (CPU bf16 autocast works but is opt-in: it is slower than fp32 on CPUs without bf16 units).
    fp16 needs CUDA (its loss scaling is CUDA's GradScaler)."""
    precision = override or (recipe if device.type == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise CxrdataError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise CxrdataError(f"precision fp16 needs a CUDA device (on {device.type}: bf16 or fp32)")
    return precision


def autocast(device: torch.device, precision: str = "bf16") -> Any:
    """``torch.autocast`` in ``precision`` (``bf16`` / ``fp16``) on ``device``'s type; a no-op for ``fp32``.
    Weights stay as they are (fp32 master weights): only the ops autocast lists run in the lower precision."""
    if precision not in PRECISIONS:
        raise CxrdataError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compile_blocks(blocks: Iterable[nn.Module]) -> int:
    """``torch.compile`` each block in place (``nn.Module.compile``: parameter names, state dicts and hooks on
    other modules unchanged); returns how many. Block by block rather than the whole model: the models' own
    Python (masks, hooks, early exit) stays eager, shapes that vary per batch recompile one small graph, and
    compiling takes seconds, not minutes."""
    count = 0
    for block in blocks:
        block.compile()
        count += 1
    return count


def checkpoint_blocks(blocks: Iterable[nn.Module]) -> int:
    """Gradient checkpointing for models without their own switch: each block's forward recomputes its
    activations in the backward pass instead of keeping them (``torch.utils.checkpoint``, non-reentrant, so
    frozen weights and inputs without gradients are fine); without gradients (``torch.no_grad``) it runs as is."""
    count = 0
    for block in blocks:
        block.forward = functools.partial(_checkpointed, block.forward)
        count += 1
    return count


def _checkpointed(forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)
