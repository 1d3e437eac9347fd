"""Raw records held as columns until a worker needs them.

A source with hundreds of thousands of rows (MIMIC-CXR-JPG's 377,110 images) gives its raw records as a
:class:`RecordFrame`: one polars row per record, with the keys every raw record has (``id``, ``split``,
``_partition``) as columns and the rest of the row handed to the stages as one dict under ``_raw``. The
driver filters, partitions and slices it as columns; only a task's current batch is ever turned into
Python dicts, inside the worker. A small source may keep giving a plain list of dicts: every function
here takes either (:data:`Records`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from cxrdata.stage import Record

RECORD_KEYS = ("id", "split", "_partition")  # columns of a RecordFrame that are record keys of their own
RAW = "_raw"  # the key of a record that holds its source row


@dataclass(frozen=True, eq=False)
class RecordFrame:
    """Raw records as a frame: ``id``, ``split``, ``_partition``, and the columns given to stages as ``raw``.

    With ``rows``, only those rows of ``frame`` (in that order) are the records: a task's view of the one
    joined frame, so that cutting 377,110 records into tasks copies nothing. A view is gathered into a
    frame of its own when it is pickled (sent to a worker), and is read a batch of rows at a time."""

    frame: pl.DataFrame
    raw: str = RAW  # the record key that holds the other columns, as one dict per record
    rows: np.ndarray | None = None  # row indices into ``frame``; None: every row

    def __post_init__(self) -> None:
        missing = [key for key in RECORD_KEYS if key not in self.frame.columns]
        if missing:
            raise ValueError(f"a RecordFrame needs the columns {', '.join(missing)}")

    def __len__(self) -> int:
        return self.frame.height if self.rows is None else len(self.rows)

    def __getitem__(self, rows: slice) -> list[Record]:
        """The records of a slice of rows, as dicts (the only place a frame becomes Python objects)."""
        if not isinstance(rows, slice):
            raise TypeError("a RecordFrame is sliced, not indexed: frame[start:stop]")
        frame = self.frame[rows] if self.rows is None else self.frame[self.rows[rows]]
        return _as_records(frame, self.raw)

    def __iter__(self) -> Iterator[Record]:
        for start in range(0, len(self), 4096):
            yield from self[start : start + 4096]

    def __reduce__(self) -> tuple[Any, ...]:
        return RecordFrame, (self.gathered(), self.raw)

    def gathered(self) -> pl.DataFrame:
        """This view's rows as a frame of their own (the frame itself when the view is every row)."""
        return self.frame if self.rows is None else self.frame[self.rows]

    def column(self, key: str) -> list[Any]:
        column = self.frame.get_column(key)
        return (column if self.rows is None else column.gather(self.rows)).to_list()

    def keep(self, mask: Sequence[bool] | np.ndarray | pl.Series) -> RecordFrame:
        return RecordFrame(self.gathered().filter(pl.Series(mask, dtype=pl.Boolean)), self.raw)

    def take(self, rows: np.ndarray) -> RecordFrame:
        return RecordFrame(self.gathered()[rows], self.raw)


Records = list[Record] | RecordFrame


def _as_records(frame: pl.DataFrame, raw: str) -> list[Record]:
    keys = frame.select(RECORD_KEYS).rows()
    rows = frame.drop(RECORD_KEYS).to_dicts()
    return [{"id": i, "split": s, "_partition": p, raw: row} for (i, s, p), row in zip(keys, rows, strict=True)]


def raw_frame(records: Records, names: Sequence[str]) -> pl.DataFrame:
    """The raw values ``names`` of every record, as text columns (a missing value is null)."""
    if isinstance(records, RecordFrame):
        return records.gathered().select(names)
    rows = [{name: record[RAW].get(name) for name in names} for record in records] if records else []
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")


def mask_by_distinct(frame: pl.DataFrame, rule: Callable[[dict[str, Any]], bool]) -> pl.Series:
    """``rule`` of every row, computed once per distinct row (a handful of label combinations, not 377k)."""
    if frame.height == 0:
        return pl.Series([], dtype=pl.Boolean)
    distinct = frame.unique(maintain_order=True)
    distinct = distinct.with_columns(pl.Series("_kept", [bool(rule(row)) for row in distinct.to_dicts()]))
    joined = frame.join(distinct, on=frame.columns, how="left", nulls_equal=True, maintain_order="left")
    return joined.get_column("_kept")


def values(records: Records, key: str) -> list[Any]:
    """One key of every record, in order."""
    if isinstance(records, RecordFrame):
        return records.column(key)
    return [record.get(key) for record in records]


def keep(records: Records, mask: Sequence[bool]) -> Records:
    """The records whose mask entry is true, in order."""
    if isinstance(records, RecordFrame):
        return records.keep(mask)
    return [record for record, kept in zip(records, mask, strict=True) if kept]


def take(records: Records, rows: Sequence[int]) -> Records:
    """The records at ``rows`` (ascending indices), in that order."""
    if isinstance(records, RecordFrame):
        return records.take(np.asarray(rows, dtype=np.int64))
    return [records[i] for i in rows]
