"""The dataset card (OUT/README.md), derived from the manifest (and the shards' own features).

Its YAML carries the Hugging Face metadata (licence, languages, task categories, size, pretty name), the
`configs:` that make ``datasets.load_dataset(OUT)`` find the shards and ``dataset_info`` with each config's
features (closed vocabularies as ``ClassLabel``) and split sizes (:mod:`cxrdata.io.card_meta`). Its body:
the counts, the records per split x label (x location) and box statistics (the manifest's ``statistics``),
the configuration and its hash, the tool and source dataset versions, provenance, the data fields
(:mod:`cxrdata.io.card_sections`), how to load it, the licences and the citations.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from cxrdata.io.card_meta import credentialed, front_matter, sources_used
from cxrdata.io.card_sections import citation, data_fields, licence_lines
from cxrdata.io.layout import OutputLayout
from cxrdata.io.stats import box_table, group_table

LICENCE = (
    "This dataset is derived from credentialed data (PhysioNet / BIMCV data use agreements). "
    "Do not redistribute it, do not upload it anywhere, and share it only with people who hold "
    "the same access. It was built offline: no data left this machine."
)


def _front_matter(layout: OutputLayout, manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(front_matter(layout, manifest), sort_keys=False, allow_unicode=True)


def card_text(layout: OutputLayout, manifest: dict[str, Any]) -> str:
    names = list(manifest["configs"])
    root = layout.root.resolve()
    lines = ["---", _front_matter(layout, manifest).rstrip(), "---", "", f"# cxrdata build: {', '.join(names)}", ""]
    lines += [f"Built by cxrdata {manifest['version']}; configuration hash `{manifest['config_hash']}`.", ""]
    lines += ["## Counts", "", "| config | split | read | written | rejected |", "| --- | --- | ---: | ---: | ---: |"]
    for name, config in manifest["configs"].items():
        for split, c in config["counts"]["splits"].items():
            lines.append(f"| {name} | {split} | {c['read']} | {c['written']} | {c['rejected']} |")
    lines += ["", "## Rejects by reason", ""]
    reasons = [[name, reason, n] for name, config in manifest["configs"].items()
               for reason, n in config["counts"]["rejects_by_reason"].items()]
    lines += _markdown_table(["config", "reason", "records"], reasons, 2) if reasons else ["None.", ""]
    lines += ["Every rejected record is listed in `rejects/<config>/*.parquet` with its stage, reason and detail.", ""]
    lines += _statistics(manifest)
    lines += _versions(manifest)
    lines += ["## Configuration and provenance", ""]
    for name, config in manifest["configs"].items():
        lines.append(f"- **{name}**: dataset `{config['dataset']}` read from `{config['root']}`, "
                     f"schema `{config['schema']}`, {_tasks(config['tasks'])}, stages {', '.join(config['stages'])}")
        for key, value in config["options"].items():
            lines.append(f"  - {key}: `{value}`")
        for reason, n in config.get("excluded", {}).items():
            lines.append(f"  - excluded ({reason}): {n}")
    lines += ["", *data_fields(layout, manifest)]
    lines += ["## Loading", "", "```python", "from datasets import load_dataset", ""]
    lines += [f'ds = load_dataset("{root}", "{name}")' for name in names]
    lines += ["# the same features without the card:", "import cxrdata", "",
              f'ds = cxrdata.load("{root}", "{names[0]}")',
              "# or one config's shards directly (closed-vocabulary columns as their names):",
              f'ds = load_dataset("parquet", data_dir="{root}/data/{names[0]}")', "```", "",
              "Boxes are `[x_min, y_min, x_max, y_max]` normalised to [0, 1] of the original image "
              "(`original_width` x `original_height`). Through the card or `cxrdata.load`, columns with a "
              "closed vocabulary load as `datasets.ClassLabel` ids (`ds.features[column].int2str(id)` gives the "
              "name); the Parquet files hold the names, as polars and pyarrow read them.", "",
              "## Licence", ""]
    sources = sources_used(manifest)
    if credentialed(sources):
        lines += [LICENCE, ""]
    lines += licence_lines(sources)
    lines += citation(sources)
    return "\n".join(lines)


def _tasks(tasks: dict[str, int]) -> str:
    """Tasks (= shards) per split: ``train 12, validation 1, test 2 tasks``."""
    return f"{', '.join(f'{split} {n}' for split, n in tasks.items()) or 'no'} tasks"


GROUP_NOTES = {
    ("pathology", "location"): " (a record counts once under each location its prompt names)",
    ("label",): " (records with at least one region of that label; boxes: that label's boxes)",
}


def _markdown_table(header: list[str], rows: list[list[Any]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    return [f"| {' | '.join(header)} |", f"| {' | '.join(align)} |",
            *(f"| {' | '.join(str(c) for c in row)} |" for row in rows), ""]


def _statistics(manifest: dict[str, Any]) -> list[str]:
    """Records per split x label (x location) and box statistics of every config that has them."""
    lines: list[str] = []
    for name, config in manifest["configs"].items():
        stats = config.get("statistics")
        if not stats:
            continue
        lines += [f"## Statistics: {name}", ""]
        if stats["groups"]["by"]:
            header, rows = group_table(stats)
            by = stats["groups"]["by"]
            lines += [f"Records per split and {' x '.join(by)}{GROUP_NOTES.get(tuple(by), '')}:", ""]
            lines += _markdown_table(header, rows, len(by))
        if stats["boxes"]["count"]:
            per_split = ", ".join(f"{s} {n}" for s, n in stats["boxes"]["per_split"].items())
            lines += [f"{stats['boxes']['count']} boxes ({per_split}); width, height, area and centre in [0, 1] "
                      "of the original image:", ""]
            lines += _markdown_table(*box_table(stats), 1)
    return lines


def _versions(manifest: dict[str, Any]) -> list[str]:
    lines = ["## Versions", "", f"- cxrdata {manifest['version']}"]
    for name, config in manifest["configs"].items():
        versions = config.get("versions") or {}
        for dataset, entry in versions.items():
            lines.append(f"- {name} read {dataset} {entry['version']} (evidence: {entry['evidence']})")
        if not versions:
            lines.append(f"- {name}: {config['dataset']} version not detectable from the files")
    return [*lines, ""]


def write_card(layout: OutputLayout, manifest: dict[str, Any]) -> None:
    tmp = layout.card.with_name("README.md.tmp")
    tmp.write_text(card_text(layout, manifest))
    os.replace(tmp, layout.card)
