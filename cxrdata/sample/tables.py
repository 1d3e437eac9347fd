"""Byte-reproducible CSV, gzip and checksum files for the sample writers.

Same rows in, same bytes out: ``\\n`` line ends, gzip with mtime 0 and no file name in its header,
checksums listed in sorted path order.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterable, Sequence
from pathlib import Path


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """CSV text as pandas writes it by default: minimal quoting, ``\\n`` line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (mtime 0, no original file name), so equal input gives equal bytes."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
        fh.write(data)
    return raw.getvalue()


def write(path: Path, data: bytes) -> Path:
    """Write bytes, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """A CSV file, gzip-compressed when the name ends in ``.gz``."""
    data = csv_bytes(header, rows)
    return write(path, gzip_bytes(data) if path.name.endswith(".gz") else data)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sha256sums(root: Path, files: Iterable[Path], name: str = "SHA256SUMS.txt") -> Path:
    """PhysioNet-style ``<sha256> <relative path>`` lines, sorted by path."""
    rels = sorted(str(f.relative_to(root)) for f in files)
    lines = "".join(f"{sha256(root / rel)} {rel}\n" for rel in rels)
    return write(root / name, lines.encode())
