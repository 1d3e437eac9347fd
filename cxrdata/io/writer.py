"""Parquet shard writing: streamed row groups to a temporary name, renamed into place when closed.

A shard is never visible under its final name until it is complete, so a killed build leaves at
worst a ``*.tmp`` file that the rerun of the same task deletes and rewrites.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cxrdata.io.schema import TableSchema

ROW_GROUP_SIZE = 256


def shard_name(split: str, index: int, count: int) -> str:
    """``{split}-{i:05d}-of-{n:05d}.parquet`` (the Hugging Face convention)."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def to_table(records: list[dict[str, Any]], schema: TableSchema) -> pa.Table:
    """Records -> Arrow table in the schema's exact columns and types.

    Keys starting with ``_`` are a stage's private working data and are dropped. Any other key
    the schema does not know, or a schema column a record lacks, is a programming error: the
    writer and the schema must agree.
    """
    names = schema.names
    expected = set(names)
    for record in records:
        public = {k for k in record if not k.startswith("_")}
        if public != expected:
            missing, extra = sorted(expected - public), sorted(public - expected)
            raise ValueError(f"record {record.get('id')!r} does not match schema {schema.name!r}: "
                             f"missing {missing}, unexpected {extra}")
    columns = {name: [r[name] for r in records] for name in names}
    return pa.Table.from_pydict(columns, schema=schema.arrow)


class ShardWriter:
    """Writes one shard file in row groups; ``close()`` renames it to its final name."""

    def __init__(self, path: Path, schema: TableSchema, row_group_size: int = ROW_GROUP_SIZE) -> None:
        self.path = path
        self.schema = schema
        self.row_group_size = row_group_size
        self.tmp_path = path.with_name(path.name + ".tmp")
        self.rows = 0
        self._pending: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None

    def write(self, records: list[dict[str, Any]]) -> None:
        self._pending.extend(records)
        while len(self._pending) >= self.row_group_size:
            self._flush(self._pending[: self.row_group_size])
            self._pending = self._pending[self.row_group_size :]

    def _flush(self, records: list[dict[str, Any]]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp_path, self.schema.arrow, compression="zstd")
        self._writer.write_table(to_table(records, self.schema), row_group_size=self.row_group_size)
        self.rows += len(records)

    def close(self) -> Path | None:
        """Flush, fsync and rename into place; returns the path, or None when nothing was written.

        No file is written for zero rows: ``datasets`` cannot read a Parquet file without rows.
        """
        if self._pending:
            self._flush(self._pending)
            self._pending = []
        if self._writer is None:
            return None
        self._writer.close()
        with open(self.tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
