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
from cxrdata.pipeline.plan import ConfigPlan
from cxrdata.pipeline.stats import BuildTotals


def manifest_counts(totals: BuildTotals) -> dict[str, Any]:
    splits = {name: vars(c) for name, c in sorted(totals.splits.items())}
    for name, counts in splits.items():
        if counts["read"] != counts["written"] + counts["rejected"]:
            raise RuntimeError(f"accounting broken for split {name}: {counts}")
    total = {"read": totals.read, "written": totals.written, "rejected": totals.rejected}
    if totals.fanned_out:  # records a stage added by fanning one out into several (counted in read)
        total["fanned_out"] = totals.fanned_out
    return {
        "splits": splits,
        "total": total,
        "rejects_by_reason": dict(sorted(totals.reasons.items())),
        "notes": dict(sorted(totals.notes.items())),
    }


def build_manifest(layout: OutputLayout, build_config: dict[str, Any], totals: dict[str, BuildTotals],
                   plans: dict[str, ConfigPlan], excluded: dict[str, dict[str, int]], version: str) -> dict[str, Any]:
    """The manifest of a finished build, from its config, merged task stats, plans and exclusion counts."""
    configs = {}
    for config, config_totals in totals.items():
        source = plans[config].source
        configs[config] = {
            **build_config["configs"][config],
            "root": str(source.root),
            "splits": [s for s in source.splits if config_totals.splits.get(s) and config_totals.splits[s].written],
            "counts": manifest_counts(config_totals),
            "excluded": excluded[config],
            "data_files": sorted(Path(f).name for f in config_totals.files if f.startswith("data/")),
            "versions": source.versions(),
        }
    manifest = {
        "tool": "cxrdata",
        "version": version,
        "config_hash": build_config["hash"],
        "configs": configs,
        "inputs": {config: [vars(f) for f in plan.inputs()] for config, plan in plans.items()},
    }
    return manifest


def write_manifest(layout: OutputLayout, manifest: dict[str, Any]) -> None:
    tmp = layout.manifest.with_name("manifest.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, layout.manifest)
