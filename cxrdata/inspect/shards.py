"""Finding a build's configs and shards, and choosing rows from them deterministically.

Rows are filtered on every column but the image (``--split``, ``--where``), ordered by ``id``, and
``n`` are drawn with ``numpy.random.default_rng(seed)``: the same build, filter and seed always give
the same records. Only the chosen rows' images are then read, one row group at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from cxrdata.errors import CxrdataError
from cxrdata.inspect.where import parse_where


@dataclass(frozen=True)
class ConfigData:
    """One config of a build: its name, schema name and shard files."""

    out: Path
    name: str
    schema: str
    files: tuple[Path, ...]
    manifest: dict[str, Any]

    @property
    def rejects_dir(self) -> Path:
        return self.out / "rejects" / self.name


def read_manifest(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def config_names(out: Path) -> list[str]:
    """The build's configs: the manifest's order (the first is the card's default), else the data/ folders."""
    if not (out / "data").is_dir():
        raise CxrdataError(f"{out} holds no build (no data/ folder); give the --out of a cxrdata build")
    names = list(read_manifest(out).get("configs", {}))
    return names or sorted(p.name for p in (out / "data").iterdir() if p.is_dir())


def open_config(out: Path, config: str | None = None, split: str | None = None) -> ConfigData:
    """The config (default: the build's first) and its shards (of ``split`` only, when given)."""
    names = config_names(out)
    if not names:
        raise CxrdataError(f"{out}/data holds no config")
    name = config or names[0]
    if name not in names:
        raise CxrdataError(f"no config {name!r} in {out}; it has: {', '.join(names)}")
    files = tuple(sorted((out / "data" / name).glob(f"{split or '*'}-*.parquet")))
    if not files:
        raise CxrdataError(f"config {name!r} in {out} has no shards" + (f" of split {split!r}" if split else ""))
    meta = pq.read_schema(files[0]).metadata or {}
    schema = json.loads(meta.get(b"cxrdata", b"{}")).get("schema", name)
    return ConfigData(out, name, schema, files, read_manifest(out).get("configs", {}).get(name, {}))


def _index(data: ConfigData) -> pl.LazyFrame:
    """Every row without its image, with ``_file`` and ``_row`` to fetch it later."""
    frames = []
    for i, path in enumerate(data.files):
        names = [n for n in pq.read_schema(path).names if n != "image"]
        frames.append(pl.scan_parquet(path).select(names).with_row_index("_row").with_columns(_file=pl.lit(i)))
    return pl.concat(frames, how="diagonal_relaxed")


def choose(data: ConfigData, n: int, seed: int = 0, where: str | None = None) -> tuple[list[tuple[int, int]], int]:
    """``(file index, row)`` of up to ``n`` rows drawn with ``seed`` among those matching ``where``
    (in id order), and how many matched."""
    index = _index(data)
    if where:
        index = index.filter(parse_where(where))
    try:
        keys = index.select("id", "_file", "_row").collect().sort("id", "_file", "_row")
    except pl.exceptions.PolarsError as exc:
        columns = [n for n in pq.read_schema(data.files[0]).names if n != "image"]
        reason = str(exc).splitlines()[0].split("; valid columns")[0]
        raise CxrdataError(f"--where {where!r} does not apply to config {data.name!r}: {reason} "
                           f"(columns: {', '.join(columns)})") from None
    picked = np.sort(np.random.default_rng(seed).choice(keys.height, size=min(n, keys.height), replace=False))
    rows = keys[picked.tolist()] if keys.height else keys
    return [(int(f), int(r)) for f, r in rows.select("_file", "_row").iter_rows()], keys.height


def read_rows(data: ConfigData, keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The full rows (image included) at ``keys``, in that order, reading only their row groups."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for file_index in sorted({f for f, _ in keys}):
        parquet = pq.ParquetFile(data.files[file_index])
        wanted = sorted(r for f, r in keys if f == file_index)
        start = 0
        for group in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            inside = [r for r in wanted if start <= r < start + size]
            if inside:
                table = parquet.read_row_group(group).take([r - start for r in inside])
                rows.update({(file_index, r): row for r, row in zip(inside, table.to_pylist(), strict=True)})
            start += size
    return [rows[k] for k in keys]
