"""manifest.json: tool version, configuration and hash, inputs, and counts per config and split.

Deterministic for the same inputs and configuration (no timestamps or timings: those live in the
task markers), and it checks its own invariant: read = written + rejected, per split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cxrdata.io.layout import OutputLayout
from cxrdata.io.versions import source_versions
from cxrdata.pipeline.stats import BuildTotals


def manifest_counts(totals: BuildTotals) -> dict[str, Any]:
    splits = {name: vars(c) for name, c in sorted(totals.splits.items())}
    for name, counts in splits.items():
        if counts["read"] != counts["written"] + counts["rejected"]:
            raise RuntimeError(f"accounting broken for split {name}: {counts}")
    return {
        "splits": splits,
        "total": {"read": totals.read, "written": totals.written, "rejected": totals.rejected},
        "rejects_by_reason": dict(sorted(totals.reasons.items())),
        "notes": dict(sorted(totals.notes.items())),
    }


def build_manifest(layout: OutputLayout, build_config: dict[str, Any], totals: dict[str, BuildTotals],
                   sources: dict[str, Any], version: str) -> dict[str, Any]:
    """The manifest of a finished build, from its config, merged task stats and sources."""
    configs = {}
    for config, config_totals in totals.items():
        source = sources[config]
        configs[config] = {
            **build_config["configs"][config],
            "root": str(source.root),
            "splits": [s for s in source.splits if config_totals.splits.get(s) and config_totals.splits[s].written],
            "counts": manifest_counts(config_totals),
            "excluded": dict(getattr(source, "excluded", {})),
            "data_files": sorted(Path(f).name for f in config_totals.files if f.startswith("data/")),
            "versions": source_versions(source),
        }
    manifest = {
        "tool": "cxrdata",
        "version": version,
        "config_hash": build_config["hash"],
        "configs": configs,
        "inputs": {config: [vars(f) for f in source.inputs()] for config, source in sources.items()},
    }
    return manifest


def write_manifest(layout: OutputLayout, manifest: dict[str, Any]) -> None:
    tmp = layout.manifest.with_name("manifest.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, layout.manifest)
