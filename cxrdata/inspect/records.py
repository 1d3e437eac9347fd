"""The records a preview shows: chosen from a build deterministically, as panels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxrdata.errors import CxrdataError
from cxrdata.inspect.panels import Panel, panel
from cxrdata.inspect.shards import choose, read_rows
from cxrdata.io.layout import BuiltConfig, read_build


@dataclass
class Chosen:
    config: BuiltConfig
    panels: list[Panel]
    matched: int  # rows that passed --split / --where

    def title(self, where: str | None, seed: int) -> str:
        chosen = f"{len(self.panels)} of {self.matched} records"
        return f"{self.config.name}: {chosen}" + (f" where {where}" if where else "") + f" (seed {seed})"


def choose_panels(out: Path, n: int, config: str | None = None, split: str | None = None, where: str | None = None,
                  seed: int = 0) -> Chosen:
    """Up to ``n`` records of a build drawn with ``seed`` among those matching ``split`` and ``where``."""
    if n < 1:
        raise CxrdataError("--n must be at least 1")
    data = read_build(out, config)
    files = data.split_files(split)
    keys, matched = choose(files, n, seed, where, data.name)
    if not keys:
        raise CxrdataError(f"no record of {data.name!r} matches" + (f" --where {where!r}" if where else ""))
    grid = data.manifest.get("options", {}).get("lut_grid")
    return Chosen(data, [panel(row, data.schema, grid) for row in read_rows(files, keys)], matched)
