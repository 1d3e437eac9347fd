"""Choosing rows from a config's shards deterministically, and reading only those rows back.

Rows are filtered on every column but the image (``--split``, ``--where``), ordered by ``id``, and
``n`` are drawn with ``numpy.random.default_rng(seed)``: the same build, filter and seed always give
the same records. Only the chosen rows' images are then read, one row group at a time. Which shards:
:func:`cxrdata.io.layout.read_build`, as for every command that reads a build.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from cxrdata.errors import CxrdataError
from cxrdata.inspect.where import parse_where


def _index(files: Sequence[Path]) -> pl.LazyFrame:
    """Every row without its image, with ``_file`` and ``_row`` to fetch it later."""
    frames = []
    for i, path in enumerate(files):
        names = [n for n in pq.read_schema(path).names if n != "image"]
        frames.append(pl.scan_parquet(path).select(names).with_row_index("_row").with_columns(_file=pl.lit(i)))
    return pl.concat(frames, how="diagonal_relaxed")


def choose(files: Sequence[Path], n: int, seed: int = 0, where: str | None = None,
           config: str = "") -> tuple[list[tuple[int, int]], int]:
    """``(file index, row)`` of up to ``n`` rows of ``files`` drawn with ``seed`` among those matching ``where``
    (in id order), and how many matched (``config`` names them in errors)."""
    index = _index(files)
    if where:
        index = index.filter(parse_where(where))
    try:
        keys = index.select("id", "_file", "_row").collect().sort("id", "_file", "_row")
    except pl.exceptions.PolarsError as exc:
        columns = [n for n in pq.read_schema(files[0]).names if n != "image"]
        reason = str(exc).splitlines()[0].split("; valid columns")[0]
        raise CxrdataError(f"--where {where!r} does not apply to config {config!r}: {reason} "
                           f"(columns: {', '.join(columns)})") from None
    picked = np.sort(np.random.default_rng(seed).choice(keys.height, size=min(n, keys.height), replace=False))
    rows = keys[picked.tolist()] if keys.height else keys
    return [(int(f), int(r)) for f, r in rows.select("_file", "_row").iter_rows()], keys.height


def read_rows(files: Sequence[Path], keys: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The full rows (image included) at ``keys`` of ``files``, in that order, reading only their row groups."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for file_index in sorted({f for f, _ in keys}):
        parquet = pq.ParquetFile(files[file_index])
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
