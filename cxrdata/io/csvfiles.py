"""Reading the datasets' CSV files with polars: every column as text, checked up front.

Everything is read as strings and converted by the stages, so one malformed cell becomes one
reject with a reason instead of a failed build. A missing file or column is known before any work
starts and is reported in one line naming the file, the missing columns and what was found.
"""

from __future__ import annotations

import gzip
from collections.abc import Collection, Iterable
from pathlib import Path

import polars as pl

from cxrdata.errors import CxrdataError


def find_file(root: Path, names: Iterable[str], what: str) -> Path:
    """The first of ``names`` present under ``root`` (e.g. a ``.csv.gz`` or its unzipped ``.csv``)."""
    names = list(names)
    for name in names:
        if (root / name).is_file():
            return root / name
    raise CxrdataError(f"{what} not found: expected {' or '.join(names)} in {root}")


GZIP_MAGIC = b"\x1f\x8b"


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
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:  # type: ignore[operator]
            line = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
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


def read_text_csv(path: Path, rename: dict[str, str] | None = None, separator: str = ",",
                  distinct_columns: Collection[str] | None = None) -> pl.DataFrame:
    """The whole CSV with every column as text (empty cells are null).

    With ``distinct_columns`` (those whose values are mostly distinct: ids, times), every other column is
    read as a polars ``Categorical``: the same text, four bytes a cell instead of sixteen, which is what
    keeps a 377,110-row metadata table small."""
    names = header(path, separator)
    few = {} if distinct_columns is None else {n: pl.Categorical for n in names if n and n not in distinct_columns}
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", separator=separator,
                            schema_overrides=few or None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise CxrdataError(f"{path} cannot be parsed as CSV: {exc}") from None
    return frame.rename(rename or {}, strict=False)
