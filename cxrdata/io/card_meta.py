"""The Hugging Face metadata of a dataset card: licence, languages, tasks, size, name and features.

What it says about each source dataset (name, licence, languages, references) is data, in
``card_sources.yaml``; the task categories are the output schemas' (``schemas/*.json``); the features are
the shards' own, with closed vocabularies as ``ClassLabel`` (:mod:`cxrdata.io.hub_features`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from cxrdata.io.hub_features import config_features, features_yaml
from cxrdata.io.layout import OutputLayout
from cxrdata.io.schema import available, load_schema
from cxrdata.yamlfiles import load_yaml

# The Hub's size bins (huggingface_hub DatasetCardData.size_categories), as (upper bound, name).
SIZE_BINS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
             (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
             (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"))
TAGS = ["medical", "chest-x-ray", "cxrdata"]


@cache
def card_sources() -> dict[str, Any]:
    """``card_sources.yaml``: licences, sources, option sources and references."""
    return load_yaml(resources.files("cxrdata.io").joinpath("card_sources.yaml").read_text())


def size_category(rows: int) -> str:
    """The Hub's size bin of a dataset of ``rows`` examples: n<1K for fewer than 1,000, 1K<n<10K below 10,000..."""
    return next((name for bound, name in SIZE_BINS if rows < bound), "n>1T")


def sources_used(manifest: dict[str, Any]) -> list[str]:
    """The source datasets a build's rows come from, in order: each config's dataset, the sources it includes
    (MS-CXR rows carry MIMIC-CXR-JPG images, ...), and those an option set brings in (``--lut``)."""
    known = card_sources()["sources"]
    found: list[str] = []

    def add(key: str) -> None:
        if key in found:
            return
        found.append(key)
        for included in known.get(key, {}).get("includes", ()):
            add(included)

    for config in manifest["configs"].values():
        add(config["dataset"])
    for config in manifest["configs"].values():
        for option, keys in card_sources()["option_sources"].items():
            if config.get("options", {}).get(option) is not None:
                for key in keys:
                    add(key)
    return found


def licences(sources: list[str]) -> list[dict[str, str]]:
    """The distinct licences of the sources that carry one, in source order."""
    data = card_sources()
    keys = dict.fromkeys(data["sources"][s]["license"] for s in sources
                         if s in data["sources"] and "license" in data["sources"][s])
    return [data["licenses"][k] for k in keys]


def credentialed(sources: list[str]) -> bool:
    """Whether the rows carry credentialed data (or data of unknown terms): the card then says not to share it."""
    found = licences(sources)
    return not found or any(lic.get("credentialed", True) for lic in found)


def references(sources: list[str]) -> list[str]:
    """The BibTeX entries to cite, each once, in source order."""
    data = card_sources()
    keys = dict.fromkeys(k for s in sources for k in data["sources"].get(s, {}).get("cite", ()))
    return [data["references"][k] for k in keys]


def _license_fields(sources: list[str]) -> dict[str, Any]:
    """``license`` (+ ``license_name``/``license_link`` for a licence the Hub does not know); several licences:
    the ids as a list, and the name and link of the first custom one (the card body lists them all)."""
    found = licences(sources)
    if not found:
        return {"license": "unknown"}
    ids = list(dict.fromkeys(lic["id"] for lic in found))
    fields: dict[str, Any] = {"license": ids[0] if len(ids) == 1 else ids}
    custom = [lic for lic in found if lic["id"] == "other"]
    if custom:
        fields["license_name"] = "+".join(lic["name"] for lic in custom)
        fields["license_link"] = custom[0]["link"]
    return fields


def task_categories(manifest: dict[str, Any]) -> list[str]:
    """The Hub task categories the configs' tables serve (from their schemas), in order of first appearance."""
    names = set(available())
    tasks = [task for config in manifest["configs"].values()
             if (schema := config["schema"].split("@")[0]) in names
             for task in load_schema(schema).task_categories]
    return list(dict.fromkeys(tasks))


def pretty_name(manifest: dict[str, Any]) -> str:
    known = card_sources()["sources"]
    datasets = dict.fromkeys(known.get(c["dataset"], {}).get("pretty_name", c["dataset"])
                             for c in manifest["configs"].values())
    return f"{', '.join(datasets)} (cxrdata: {', '.join(manifest['configs'])})"


def dataset_info(layout: OutputLayout, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per config: its features (as ``datasets`` will load them), its splits' row counts and shard bytes.
    Besides informing, the counts make the card's YAML differ between builds of different content: `datasets`
    caches a local folder under its *name* and a hash of the card's YAML, so without them two builds both
    called ``out`` load as whichever came first."""
    infos = []
    for name, config in manifest["configs"].items():
        splits = []
        for split in config["splits"]:
            files = [f for f in config["data_files"] if f.startswith(f"{split}-")]
            size = sum((layout.data_dir(name) / f).stat().st_size for f in files)
            splits.append({"name": split, "num_bytes": size,
                           "num_examples": config["counts"]["splits"][split]["written"]})
        total = sum(s["num_bytes"] for s in splits)
        info: dict[str, Any] = {"config_name": name}
        if config["data_files"]:
            info["features"] = features_yaml(config_features(layout.data_dir(name) / config["data_files"][0]))
        infos.append({**info, "splits": splits, "download_size": total, "dataset_size": total})
    return infos


def front_matter(layout: OutputLayout, manifest: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML: Hub metadata, then ``configs`` (data files per split) and ``dataset_info``."""
    sources = sources_used(manifest)
    known = card_sources()["sources"]
    rows = sum(config["counts"]["total"]["written"] for config in manifest["configs"].values())
    configs = []
    for i, (name, config) in enumerate(manifest["configs"].items()):
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [{"split": s, "path": f"data/{name}/{s}-*.parquet"} for s in config["splits"]],
        }
        if i == 0:
            entry["default"] = True
        configs.append(entry)
    languages = list(dict.fromkeys(lang for s in sources for lang in known.get(s, {}).get("language", ())))
    hub: dict[str, Any] = {**_license_fields(sources), "pretty_name": pretty_name(manifest),
                           "language": languages, "task_categories": task_categories(manifest),
                           "size_categories": [size_category(rows)], "tags": TAGS}
    return {**{k: v for k, v in hub.items() if v}, "configs": configs, "dataset_info": dataset_info(layout, manifest)}
