"""Reading the datasets' CSV files with polars: every column as text, checked up front.

Everything is read as strings and converted by the stages, so one malformed cell becomes one
reject with a reason instead of a failed build. A missing file or column is known before any work
starts and is reported in one line naming the file, the missing columns and what was found.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
from isal import igzip, igzip_lib

from cxrdata.errors import CxrdataError


def find_file(root: Path, names: Iterable[str], what: str) -> Path:
    """The first of ``names`` present under ``root`` (e.g. a ``.csv.gz`` or its unzipped ``.csv``)."""
    names = list(names)
    for name in names:
        if (root / name).is_file():
            return root / name
    raise CxrdataError(f"{what} not found: expected {' or '.join(names)} in {root}")


GZIP_MAGIC = b"\x1f\x8b"
# What reading a damaged file raises: truncated (EOFError), a bad header or CRC (OSError), corrupt deflate data
# (zlib.error from gzip, IsalError from ISA-L; neither is an OSError).
READ_ERRORS = (OSError, EOFError, zlib.error, igzip_lib.IsalError)


def check_readable(path: Path) -> None:
    """Refuse, in one line, a CSV that is empty or a ``.gz`` that is not gzip (before polars guesses)."""
    try:
        with open(path, "rb") as fh:
            start = fh.read(2)
    except OSError as exc:
        raise CxrdataError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not start:
        raise CxrdataError(f"{path} is empty (0 bytes): download it again")
    if path.suffix == ".gz" and start != GZIP_MAGIC:
        raise CxrdataError(f"{path} is named .gz but is not gzip-compressed: download it again")


def header(path: Path, separator: str = ",") -> list[str]:
    """Column names of a CSV (gzipped or not; ``separator="\t"`` for a TSV), without reading the rest."""
    check_readable(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:  # type: ignore[operator]
            line = fh.readline().decode("utf-8-sig", errors="replace")  # as polars reads cells: utf8-lossy
    except READ_ERRORS as exc:
        raise CxrdataError(f"{path} cannot be read as CSV: {exc}") from None
    if not line.strip():
        raise CxrdataError(f"{path} has no header line (an empty table): download it again")
    cells = pl.read_csv(line.encode(), has_header=False, infer_schema=False, separator=separator).row(0)
    return [(c or "").strip().strip('"') for c in cells]  # an unnamed index column has an empty name


def require_columns(path: Path, required: Iterable[str], separator: str = ",") -> list[str]:
    """The file's header, after checking that every required column is in it."""
    found = header(path, separator)
    missing = [c for c in required if c not in found]
    if missing:
        raise CxrdataError(f"{path.name}: missing column(s) {', '.join(missing)} (found: {', '.join(found)})")
    return found


PIECE_BYTES = 4 << 20  # a large CSV is parsed in pieces of about this many (decompressed) bytes


def read_text_csv(path: Path, rename: dict[str, str] | None = None, separator: str = ",",
                  distinct_columns: Collection[str] | None = None, piece_bytes: int = PIECE_BYTES) -> pl.DataFrame:
    """The whole CSV with every column as text (empty cells are null).

    With ``distinct_columns`` (those whose values are mostly distinct: ids, times), every other column is
    read as a polars ``Categorical`` of its own with two-byte codes: the same text, two bytes a cell instead
    of sixteen, which is what keeps a 377,110-row metadata table small (a table with more than 65,536
    values in such a column, or with bytes that are not UTF-8, is read again as text and converted to
    four-byte codes). A file is decompressed and parsed in pieces cut at line
    ends (:func:`pieces`), so the driver never holds a 58 MB decompressed metadata table beside its frame."""
    names = header(path, separator)
    few = [n for n in names if n and n not in distinct_columns] if distinct_columns is not None else []
    try:
        try:
            frame = _read_pieces(path, separator, {n: _categorical(n, pl.UInt16) for n in few}, piece_bytes)
        except pl.exceptions.ComputeError:  # more values than two-byte codes hold, bytes that are not UTF-8
            frame = _read_pieces(path, separator, {}, piece_bytes)  # (or a malformed file: that fails again)
            frame = frame.with_columns(pl.col(few).cast(pl.Categorical))
    except (pl.exceptions.PolarsError, *READ_ERRORS) as exc:
        raise CxrdataError(f"{path} cannot be parsed as CSV: {exc}") from None
    return frame.rename(rename or {}, strict=False)


def _categorical(column: str, codes: type[pl.DataType]) -> pl.DataType:
    """A Categorical whose values are those of ``column`` only (so two-byte codes go far)."""
    return pl.Categorical(pl.Categories(f"cxrdata.csv.{column}", physical=codes))


def _read_pieces(path: Path, separator: str, overrides: dict[str, pl.DataType], piece_bytes: int) -> pl.DataFrame:
    options: dict[str, Any] = {"infer_schema": False, "encoding": "utf8-lossy", "separator": separator}
    frames: list[pl.DataFrame] = []
    for piece in pieces(path, piece_bytes, separator):
        if not frames:
            frames.append(pl.read_csv(piece, schema_overrides=overrides or None, **options))
        else:
            frames.append(pl.read_csv(piece, has_header=False, schema=frames[0].schema, **options))
    return pl.concat(frames, how="vertical", rechunk=False) if len(frames) > 1 else frames[0]


def pieces(path: Path, size: int, separator: str = ",") -> Iterator[bytes]:
    """The file's (decompressed) bytes in pieces of about ``size``, each cut just before a whole line with
    as many fields as the header (polars takes a piece's first line for the table's width, and reads a
    blank line as a row of nulls and a short line as a row with nulls at its end).

    A cut is only made where no quote character came before it, so it can never fall inside a quoted
    field (which may hold line ends or separators); from the first piece holding a quote, the rest is one
    piece."""
    opener = igzip.open if path.suffix == ".gz" else open  # ISA-L's inflate: 3x zlib's speed, same bytes
    sep = separator.encode()
    with opener(path, "rb") as fh:  # type: ignore[operator]
        rest, width, header_end = b"", None, -1
        while block := fh.read(size):
            checked = rest.rfind(b"\n")  # the lines that start up to here were checked last time round
            data = rest + block
            if b'"' in data:
                yield data + fh.read()
                return
            if width is None:  # the header: the first line that is not blank
                header_end = data.find(b"\n", len(data) - len(data.lstrip(b"\r\n")))
                if header_end < 0:
                    rest = data
                    continue
                width = data.count(sep, 0, header_end)
            cut = _cut(data, sep, width, after=max(header_end, checked))
            if cut:
                yield data[:cut]
                data, header_end = data[cut:], -1
            rest = data
        if rest:
            yield rest


def _cut(data: bytes, sep: bytes, width: int, after: int) -> int:
    """The start of the last whole line of ``data`` that holds ``width`` separators and is not blank,
    beyond ``after`` (the header's end, for a piece's start is never the header; or the lines already
    checked, so that a file of short lines is scanned once, not once per block); 0: none."""
    end = data.rfind(b"\n")
    while end > 0 and (start := data.rfind(b"\n", 0, end) + 1) > max(after, 0):
        line = data[start:end]
        if line.count(sep) == width and line.strip(b"\r"):
            return start
        end = start - 1
    return 0
