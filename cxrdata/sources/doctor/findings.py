"""One finding type, one printer, and the checks every dataset's doctor shares.

A finding is ``ok`` (present and well-formed), ``warning`` (usable, but not what the official release
holds: a sample, a partial download, an optional file missing) or ``error`` (the build will stop or
reject records), and every finding that is not ``ok`` says exactly how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from cxrdata.errors import CxrdataError, Rejected
from cxrdata.io.csvfiles import read_text_csv, require_columns
from cxrdata.yamlfiles import load_yaml

SAMPLE_DECODES = 20
PARTIAL_FIX = "a partial download? re-run the download to completion (a sample always differs: ignore this there)"


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warning" or "error"
    item: str
    detail: str
    fix: str = ""


@cache
def official() -> dict[str, Any]:
    """``official.yaml``: the official file and row counts of each release."""
    return load_yaml(resources.files("cxrdata.sources.doctor").joinpath("official.yaml").read_text())


def print_findings(console: Console, findings: list[Finding], title: str = "doctor") -> None:
    table = Table(title=title)
    table.add_column("", no_wrap=True)
    for column in ("item", "detail", "fix"):  # long file names fold onto the next line, never cut with "…"
        table.add_column(column, overflow="fold")
    marks = {"ok": "[green]ok[/]", "warning": "[yellow]warn[/]", "error": "[red]error[/]"}
    for f in findings:
        table.add_row(marks[f.level], f.item, f.detail, f.fix)
    console.print(table)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


def count_finding(item: str, found: int, expected: int | None, unit: str, fix: str = PARTIAL_FIX) -> Finding:
    """``ok`` when ``found`` is the official count (or there is none to compare with), else a warning."""
    if expected is None or found == expected:
        suffix = " (the official count)" if expected is not None else ""
        return Finding("ok", item, f"{found:,} {unit}{suffix}")
    return Finding("warning", item, f"{found:,} {unit}; the full release has {expected:,}", fix)


def read_csv_checked(path: Path, columns: Sequence[str], fix_missing: str, fix_columns: str,
                     rename: dict[str, str] | None = None) -> tuple[Finding | None, pl.DataFrame | None]:
    """The CSV as text, or an error finding: missing file (``fix_missing``) or missing columns (``fix_columns``)."""
    if not path.is_file():
        return Finding("error", path.name, f"missing ({path})", fix_missing), None
    try:
        found = require_columns(path, [])
        renamed = [(rename or {}).get(c, c) for c in found]
        missing = [c for c in columns if c not in renamed]
        if missing:
            return Finding("error", path.name, f"missing column(s) {', '.join(missing)} (found: {', '.join(found)})",
                           fix_columns), None
        return None, read_text_csv(path, rename)
    except CxrdataError as exc:
        return Finding("error", path.name, str(exc), fix_columns), None


def evenly_spaced(items: Sequence[Any], n: int) -> list[Any]:
    """Up to ``n`` items spread over the whole (sorted) list, deterministically: first and last included."""
    if n <= 0 or not items:
        return []
    if len(items) <= n:
        return list(items)
    step = (len(items) - 1) / (n - 1) if n > 1 else 0
    return [items[round(i * step)] for i in range(n)]


def decode_findings(paths: Sequence[Path], root: Path, decode: Callable[[Path], object], fix: str,
                    n: int = SAMPLE_DECODES) -> list[Finding]:
    """Decode an evenly spaced sample of ``paths``: one error per file that does not decode, one ok for the rest."""
    sample = evenly_spaced(sorted(paths), n)
    failed: list[Finding] = []
    for path in sample:
        try:
            decode(path)
        except Rejected as exc:
            failed.append(Finding("error", _relative(path, root), f"does not decode: {exc.reason}: {exc.detail}",
                                  fix.format(path=_relative(path, root), reason=exc.reason)))
        except OSError as exc:
            failed.append(Finding("error", _relative(path, root), f"cannot be read: {exc}",
                                  fix.format(path=_relative(path, root), reason="unreadable")))
    ok = len(sample) - len(failed)
    summary = [Finding("ok", "sample decode", f"decodes: {ok} of {len(sample)} sampled files")] if sample else []
    return summary + failed


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def first_missing(item: str, wanted: Sequence[str], present: set[str], unit: str, fix: str) -> Finding:
    """How many of ``wanted`` are in ``present``; an error naming the first one missing."""
    missing = [w for w in wanted if w not in present]
    detail = f"{len(wanted) - len(missing):,} of {len(wanted):,} {unit} present"
    if missing:
        return Finding("error", item, f"{detail}; first missing: {missing[0]}", fix)
    return Finding("ok", item, detail)
