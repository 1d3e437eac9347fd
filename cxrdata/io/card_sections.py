"""Sections of the dataset card body generated from data: the data fields (from the schemas' column docs and
the features the configs load with), the licences and the citations (from ``card_sources.yaml``)."""

from __future__ import annotations

from typing import Any

from cxrdata.io.card_meta import card_sources, licences, references
from cxrdata.io.class_labels import class_names, labelled_vocabularies, vocabulary_doc
from cxrdata.io.hub_features import config_features
from cxrdata.io.layout import OutputLayout
from cxrdata.io.schema import available, image_columns_as_paths, load_schema


def type_name(feature: dict[str, Any]) -> str:
    """A feature in a few characters: ``string``, ``list<float32>[4]``, ``struct<box, label: ClassLabel(22)>``."""
    kind = feature.get("_type")
    if kind is None:
        return "struct{" + ", ".join(f"{k}: {type_name(v)}" for k, v in feature.items()) + "}"
    if kind == "Value":
        return str(feature["dtype"])
    if kind == "ClassLabel":
        return f"ClassLabel({len(feature['names'])})"
    if kind in ("List", "LargeList", "Sequence"):
        length = feature.get("length", -1)
        return f"list<{type_name(feature['feature'])}>" + (f"[{length}]" if length and length > 0 else "")
    return str(kind).lower()


def _cell(text: str) -> str:
    """Text for a Markdown table cell: no column breaks, no line breaks, no HTML tags (``<image_id>``)."""
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def data_fields(layout: OutputLayout, manifest: dict[str, Any]) -> list[str]:
    """Per config: every column with its type as loaded and its doc, then the names of its class labels."""
    lines = ["## Data fields", ""]
    names = set(available())
    for config_name, config in manifest["configs"].items():
        schema_name = config["schema"].split("@")[0]
        if schema_name not in names or not config["data_files"]:
            continue
        features = config_features(layout.data_dir(config_name) / config["data_files"][0])
        schema = load_schema(schema_name)
        if any(c.feature.get("_type") == "Image" and features.get(c.name, {}).get("_type") != "Image"
               for c in schema.columns):
            schema = image_columns_as_paths(schema)
        lines += [f"### {config_name}", "", f"Schema `{config['schema']}`: {schema.description}", "",
                  "| column | type | description |", "| --- | --- | --- |"]
        lines += [f"| `{c.name}` | `{type_name(features.get(c.name, c.feature))}` | {_cell(c.doc)} |"
                  for c in schema.columns]
        labelled = labelled_vocabularies(schema)
        if labelled:
            lines += ["", "Class labels (`datasets.ClassLabel`; the Parquet files hold the names, `datasets` "
                      "gives the ids; an id is the name's position below, from 0):", ""]
            columns: dict[str, list[str]] = {}
            for path, vocabulary in labelled:
                columns.setdefault(vocabulary, []).append(f"`{path}`")
            for vocabulary, paths in columns.items():
                lines.append(f"- {', '.join(paths)}: `{vocabulary}`, {vocabulary_doc(vocabulary)}: "
                             f"{', '.join(class_names(vocabulary))}")
        lines.append("")
    return lines


def licence_lines(sources: list[str]) -> list[str]:
    """The licence of each source the rows come from."""
    known = card_sources()["sources"]
    lines = [f"- {lic['title']}: {lic['link']}" for lic in licences(sources)]
    missing = [s for s in sources if s not in known]
    lines += [f"- {s}: no licence recorded in cxrdata (see the dataset's own terms)" for s in missing]
    return [*lines, ""]


def citation(sources: list[str]) -> list[str]:
    """The BibTeX of every source dataset, in one block."""
    known = card_sources()["sources"]
    entries = references(sources)
    if not entries:
        return ["## Citation", "", "No reference recorded for these datasets.", ""]
    names = ", ".join(known[s]["pretty_name"] for s in sources if s in known)
    return ["## Citation", "", f"This build is made from {names}. Cite them as their authors ask:", "",
            "```bibtex", "\n\n".join(entries), "```", ""]
