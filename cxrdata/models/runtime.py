"""Where and how a model runs: the device, offline mode, mixed precision."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

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


def autocast(device: torch.device, precision: str = "bf16") -> Any:
    """``torch.autocast`` for ``precision`` ``bf16`` / ``fp16`` on CUDA; a no-op on the CPU or for ``fp32``."""
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise CxrdataError(f"precision must be one of fp32, bf16, fp16, got {precision!r}")
    return torch.autocast("cuda", dtype=dtypes[precision])
