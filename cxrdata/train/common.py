"""Shared pieces of the trainers (``train lofi``, ``train ldm``): seeds, processes, checkpoints, metrics.

API (small on purpose; every trainer uses the same run-folder layout)::

    seed_everything(seed)                        python, numpy, torch (CPU + CUDA) generators
    DistInfo / init_distributed()                rank, world size; torch DDP when WORLD_SIZE > 1 (torchrun)
    mean_over_ranks(values, dist)                logged scalars averaged over the processes (all-reduce)
    loader_settings(data, device)                DataLoader workers, pinned memory, persistent workers, prefetch
    rng_state() / set_rng_state(state)           every RNG the training loop touches
    save_checkpoint(run, step, state, keep_last) RUN/checkpoints/step-NNNNNNN.pt, written atomically
    MetricsLogger(run, start_step)               RUN/metrics.csv + RUN/tensorboard/
    read_metrics(run)                            RUN/metrics.csv as floats

What running a model needs (the device, offline mode, mixed precision, reading checkpoints back, data from
shards) lives in :mod:`cxrdata.models` and :func:`cxrdata.io.layout.read_build`. A checkpoint is one
``torch.save`` file holding whatever ``state`` dict the trainer passes (by convention: ``model`` = the
trainable tensors, ``optimizer``, ``scheduler``, ``step``, ``rng``); ``save_checkpoint`` adds ``rng`` when
absent. Resuming from it continues bit-for-bit on the same machine and software.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrdata.models.checkpoints import checkpoint_path, list_checkpoints


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); NCCL on GPU, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def mean_over_ranks(values: Mapping[str, float], dist: DistInfo) -> dict[str, float]:
    """``values`` averaged over the processes (one all-reduce; every rank must call it at the same steps), so
    the logged loss is the global batch's, not rank 0's slice of it. One process: ``values`` unchanged."""
    if not dist.distributed:
        return dict(values)
    import torch.distributed as tdist

    keys = list(values)
    backend = tdist.get_backend()
    device = torch.device("cuda", dist.local_rank) if backend == "nccl" else torch.device("cpu")
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    tdist.all_reduce(packed)
    return {k: float(v) / dist.world_size for k, v in zip(keys, packed.tolist(), strict=True)}


def loader_settings(data: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """``torch.utils.data.DataLoader`` keyword arguments from a recipe's ``data`` section: ``num_workers``
    decoding processes, kept alive across epochs (``persistent_workers``), ``prefetch_factor`` batches ahead
    per worker, and page-locked batches (``pin_memory``) when the model runs on CUDA, so that the host-to-GPU
    copy (``non_blocking=True``) overlaps compute."""
    workers = int(data["num_workers"])
    out: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        out.update(persistent_workers=bool(data["persistent_workers"]), prefetch_factor=int(data["prefetch_factor"]))
    return out


def rng_state() -> dict[str, Any]:
    """Every global RNG state (Python, NumPy, torch CPU, torch CUDA when present)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: str | Path, step: int, state: dict[str, Any], keep_last: int = 0) -> Path:
    """Write ``state`` (+ RNG states) atomically as RUN/checkpoints/step-NNNNNNN.pt; keep the newest ``keep_last``
    (0 keeps all)."""
    path = checkpoint_path(run, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, **state}
    payload.setdefault("rng", rng_state())
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    if keep_last > 0:
        for _, old in list_checkpoints(run)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


class MetricsLogger:
    """Scalars per step to RUN/metrics.csv (columns fixed by the first row) and RUN/tensorboard/.

    ``start_step``: rows of a previous run after it are dropped (a resumed run rewrites them).
    TensorBoard is optional: without the ``tensorboard`` package only the CSV is written.
    """

    def __init__(self, run: str | Path, start_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields: list[str] | None = None
        kept: list[dict[str, str]] = []
        if self.path.exists() and start_step > 0:
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or []) or None
                kept = [row for row in reader if int(row["step"]) <= start_step]
        with self.path.open("w", newline="") as fh:
            if self.fields:
                writer = csv.DictWriter(fh, self.fields, lineterminator="\n")
                writer.writeheader()
                writer.writerows(kept)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(run) / "tensorboard"), purge_step=start_step + 1)
            except ImportError:
                self.writer = None

    def log(self, step: int, values: Mapping[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        if self.fields is None:
            self.fields = list(row)
            with self.path.open("w", newline="") as fh:
                csv.DictWriter(fh, self.fields, lineterminator="\n").writeheader()
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, self.fields, extrasaction="ignore", lineterminator="\n").writerow(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    """RUN/metrics.csv as floats (empty cells -> NaN)."""
    path = Path(run) / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(fh)]
