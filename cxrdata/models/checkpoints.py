"""A run's checkpoints, as loading a trained model reads them (the trainers write them: ``train.common``).

``RUN/checkpoints/step-NNNNNNN.pt``: one ``torch.save`` file per kept step, written atomically, holding the
trainer's ``state`` dict (``model`` = the trainable tensors, ``optimizer``, ``scheduler``, ``step``, ``rng``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from cxrdata.errors import CxrdataError

CHECKPOINT_DIR = "checkpoints"
_CKPT = re.compile(r"step-(\d+)\.pt")


def checkpoint_path(run: str | Path, step: int) -> Path:
    return Path(run) / CHECKPOINT_DIR / f"step-{step:07d}.pt"


def list_checkpoints(run: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as ``(step, path)``, oldest first."""
    folder = Path(run) / CHECKPOINT_DIR
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.pt") if (m := _CKPT.fullmatch(p.name))]
    return sorted(found)


def latest_checkpoint(run: str | Path) -> Path | None:
    found = list_checkpoints(run)
    return found[-1][1] if found else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by ``train.common.save_checkpoint`` (trusted: our own file, so full unpickling)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CxrdataError(f"checkpoint {path} is not readable ({exc})") from None
