"""Shared pieces of the trainers (``train lofi``, ``train ldm``): seeds, device, shards, checkpoints, metrics.

API (small on purpose; every trainer uses the same run-folder layout)::

    seed_everything(seed)                        python, numpy, torch (CPU + CUDA) generators
    pick_device("auto" | "cpu" | "cuda[:N]")     CUDA when present (or the local rank's GPU under torchrun)
    DistInfo / init_distributed()                rank, world size; torch DDP when WORLD_SIZE > 1 (torchrun)
    find_config_dir(data_dirs, config)           data/<config> of one of several build OUTs
    load_shards(data_dirs, config, split, columns)   a ``datasets.Dataset`` of that config's split (footers checked)
    rows_with_image(ds)                          per row: has its image bytes or a path (nulls are skipped, counted)
    rng_state() / set_rng_state(state)           every RNG the training loop touches
    save_checkpoint(run, step, state, keep_last) RUN/checkpoints/step-NNNNNNN.pt, written atomically
    latest_checkpoint(run) / load_checkpoint(p)  the newest complete checkpoint
    MetricsLogger(run, start_step)               RUN/metrics.csv + RUN/tensorboard/
    hf_offline()                                 HF_HUB_OFFLINE & co.: nothing is ever downloaded
    autocast(device, "bf16" | "fp16" | "fp32")   mixed precision on CUDA, a no-op on the CPU
    config_hash(cfg)                             short sha256 of a JSON-able configuration
    load_train_recipe(name_or_path, template)    recipes/<name>.yaml (``base:`` + overrides), checked key by key

A checkpoint is one ``torch.save`` file holding whatever ``state`` dict the trainer passes (by convention:
``model`` = the trainable tensors, ``optimizer``, ``scheduler``, ``step``, ``rng``); ``save_checkpoint`` adds
``rng`` when absent. Resuming from it continues bit-for-bit on the same machine and software.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrdata.errors import CxrdataError

CHECKPOINT_DIR = "checkpoints"
_CKPT = re.compile(r"step-(\d+)\.pt")


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


def pick_device(preference: str = "auto", dist_info: DistInfo | None = None) -> torch.device:
    """``auto``: the local rank's CUDA device when one is present, else the CPU."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", (dist_info or DistInfo()).local_rank)
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CxrdataError(f"device {preference!r} asked for, but torch sees no CUDA GPU")
    return device


def find_config_dir(data_dirs: Sequence[str | Path], config: str) -> Path | None:
    """``OUT/data/<config>`` (or ``OUT/<config>``, or OUT itself when it is that folder) of the first OUT having it."""
    for data in data_dirs:
        root = Path(data)
        for cand in (root / "data" / config, root / config, root):
            if cand.is_dir() and cand.name == config and any(cand.glob("*.parquet")):
                return cand
    return None


def load_shards(data_dirs: str | Path | Sequence[str | Path], config: str, split: str,
                columns: Sequence[str] | None = None) -> Any:
    """One split of one config of built shards as a ``datasets.Dataset`` (memory-mapped Arrow).

    Raises :class:`CxrdataError` naming what is missing: the config, the split, or columns.
    """
    import datasets

    dirs = [data_dirs] if isinstance(data_dirs, str | Path) else list(data_dirs)
    folder = find_config_dir(dirs, config)
    if folder is None:
        raise CxrdataError(f"no shards of config {config!r} under {', '.join(map(str, dirs))} "
                           f"(expected OUT/data/{config}/*.parquet from `cxrdata build`)")
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        present = sorted({p.name.split("-")[0] for p in folder.glob("*.parquet")})
        raise CxrdataError(f"config {config!r} ({folder}) has no split {split!r}; found: {', '.join(present)}")
    footers = {f: shard_footer(f) for f in files}
    schema = footers[files[0]].schema.to_arrow_schema()
    names = schema.names
    missing = [c for c in columns or () if c not in names]
    if missing:
        raise CxrdataError(f"config {config!r} ({folder}) lacks column(s) {', '.join(missing)} needed here; "
                           f"it has: {', '.join(names)}")
    # Zero-row shards are left out (the parquet loader of `datasets` fails on them); none left: an empty dataset.
    filled = [str(f) for f in files if footers[f].num_rows]
    if not filled:
        empty = datasets.Dataset.from_dict({n: [] for n in names}, features=datasets.Features.from_arrow_schema(schema))
        return empty.select_columns(list(columns)) if columns else empty
    try:
        ds = datasets.load_dataset("parquet", data_files={split: filled}, split=split)
    except datasets.exceptions.DatasetGenerationError as exc:
        cause = exc.__cause__ or exc
        raise CxrdataError(f"config {config!r} ({folder}) split {split!r}: the shards do not read "
                           f"({first_line(cause)}); rebuild that output") from None
    return ds.select_columns(list(columns)) if columns else ds


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def shard_footer(path: Path) -> Any:
    """A shard's Parquet footer (``pyarrow.parquet.FileMetaData``); a truncated or damaged file is one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise CxrdataError(f"shard {path} is not a readable Parquet file ({first_line(exc)}): it is truncated or "
                           "damaged; rebuild that output") from None


def config_columns(folder: Path) -> list[str]:
    """The column names of a config folder's shards (from the first shard's footer)."""
    return list(shard_footer(sorted(folder.glob("*.parquet"))[0]).schema.to_arrow_schema().names)


def rows_with_image(ds: Any, column: str = "image") -> list[bool]:
    """Per row of a shard dataset, whether its image cell holds something to decode (bytes, or a path), read from
    the Arrow validity bitmaps and offsets only (no image is decoded). A null cell, or one with neither bytes nor a
    path, is False."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = ds.data.column(column)
    if not pa.types.is_struct(col.type):
        return pc.is_valid(col).to_pylist()
    parts = []
    for chunk in col.chunks:
        has = pc.is_valid(chunk)
        if "bytes" in [f.name for f in chunk.type]:
            data = chunk.field("bytes")
            has_bytes = pc.and_(pc.is_valid(data), pc.greater(pc.binary_length(data), 0))
            has_path = pc.is_valid(chunk.field("path")) if "path" in [f.name for f in chunk.type] else has_bytes
            has = pc.and_(has, pc.or_(has_bytes, has_path))
        parts.extend(pc.fill_null(has, False).to_pylist())
    return parts


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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (trusted: our own file, so full unpickling)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise CxrdataError(f"checkpoint {path} is not readable ({exc})") from None


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


def count_parameters(params: Iterable[torch.nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


# --- recipes, offline mode, mixed precision (added for `train ldm`; generic, usable by every trainer) ---------


def hf_offline() -> None:
    """Forbid every Hugging Face download in this process (weights come from local folders only)."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[key] = "1"


def autocast(device: torch.device, precision: str = "bf16") -> Any:
    """``torch.autocast`` for ``precision`` ``bf16`` / ``fp16`` on CUDA; a no-op on the CPU or for ``fp32``."""
    import contextlib

    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise CxrdataError(f"precision must be one of fp32, bf16, fp16, got {precision!r}")
    return torch.autocast("cuda", dtype=dtypes[precision])


def config_hash(config: Any) -> str:
    """sha256 (16 hex digits) of a JSON-able configuration, key order ignored."""
    import hashlib
    import json

    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_recipes_dir() -> Path:
    """``recipes/`` of an install (package ``cxrdata.recipes``) or of a source checkout."""
    from importlib import resources

    try:
        return Path(str(resources.files("cxrdata.recipes")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "recipes"


def load_train_recipe(name_or_path: str | Path, template: Mapping[str, Any],
                      optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A trainer recipe (bundled name or YAML path), checked key by key against ``template``.

    ``template`` is a nested mapping whose leaves are types (or tuples of types; ``None`` in a tuple allows
    null). A recipe may start with ``base: NAME_OR_PATH``: it then holds only overrides of that recipe's keys.
    ``optional``: top-level sections a recipe may have or not (e.g. ``tiny``), checked like ``template`` when present.
    Unknown keys, missing keys and wrong types raise :class:`CxrdataError` naming the file and the key.
    """
    optional = dict(optional or {})
    import yaml

    def read(ref: str | Path, seen: tuple[Path, ...]) -> tuple[Path, dict[str, Any]]:
        path = Path(ref)
        if not path.suffix:
            path = train_recipes_dir() / f"{ref}.yaml"
        if path in seen:
            raise CxrdataError(f"recipe {path}: 'base' chain loops")
        try:
            doc = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise CxrdataError(f"recipe {ref!r} not found (looked for {path})") from None
        except (OSError, yaml.YAMLError) as exc:
            raise CxrdataError(f"recipe {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict):
            raise CxrdataError(f"recipe {path}: must be a YAML mapping")
        if "base" not in doc:
            return path, doc
        base_ref = doc.pop("base")
        base_ref = base_ref if Path(base_ref).suffix == "" or Path(base_ref).is_absolute() \
            else path.parent / base_ref
        _, base = read(base_ref, (*seen, path))
        return path, _merge(base, doc, str(path), "", set(optional))

    path, doc = read(name_or_path, ())
    _check(doc, {**template, **{k: v for k, v in optional.items() if k in doc}}, str(path), "")
    return doc


def _merge(base: dict[str, Any], over: Mapping[str, Any], source: str, prefix: str,
           new_ok: set[str] | None = None) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        name = f"{prefix}{key}"
        if key not in base and key not in ("name", "description", *(new_ok or ())):
            raise CxrdataError(f"recipe {source}: unknown key {name!r} (not in its base recipe)")
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            out[key] = _merge(dict(base[key]), value, source, f"{name}.")
        else:
            out[key] = value
    return out


def _check(doc: Mapping[str, Any], template: Mapping[str, Any], source: str, prefix: str) -> None:
    for key in doc:
        if key not in template:
            raise CxrdataError(f"recipe {source}: unknown key {prefix}{key!r}")
    for key, kind in template.items():
        name = f"{prefix}{key}"
        if key not in doc:
            raise CxrdataError(f"recipe {source}: missing key {name!r}")
        value = doc[key]
        if isinstance(kind, Mapping):
            if not isinstance(value, Mapping):
                raise CxrdataError(f"recipe {source}: {name!r} must be a mapping")
            _check(value, kind, source, f"{name}.")
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if value is None and None in kinds:
            continue
        types = tuple(k for k in kinds if k is not None)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
            raise CxrdataError(f"recipe {source}: {name!r} must be {want}, got {value!r}")
