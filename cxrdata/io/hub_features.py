"""The Hugging Face features a config declares: what its shards hold, with ``ClassLabel`` for closed vocabularies.

The dataset card's ``dataset_info.features`` and ``cxrdata.load`` both come from here, so that
``datasets.load_dataset(OUT, config)`` and ``cxrdata.load(OUT, config)`` give the same features. The card
needs them in the YAML list form of ``datasets.Features._to_yaml_list``; it is written here without
``datasets`` (a build never imports it), and a test checks it against ``datasets`` for every schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cxrdata.errors import CxrdataError
from cxrdata.io.class_labels import with_class_labels
from cxrdata.io.schema import available, load_schema


def shard_features(shard: Path) -> tuple[dict[str, Any], str | None]:
    """The features a shard carries in its ``huggingface`` metadata, and the schema it was written with."""
    metadata = pq.read_schema(shard).metadata or {}
    try:
        features = json.loads(metadata[b"huggingface"])["info"]["features"]
    except (KeyError, ValueError) as exc:
        raise CxrdataError(f"{shard} carries no Hugging Face features in its schema metadata") from exc
    schema = json.loads(metadata.get(b"cxrdata", b"{}")).get("schema")
    return features, schema


def config_features(shard: Path) -> dict[str, Any]:
    """The features to load a config with (``Features.to_dict()`` form): its first shard's, with the closed
    vocabularies of the schema it was written with declared ``ClassLabel``."""
    features, schema = shard_features(shard)
    if schema is None or schema not in available():
        return features
    return with_class_labels(features, load_schema(schema))


def _yaml(feature: dict[str, Any]) -> dict[str, Any]:
    """One feature in the card's YAML form (the inverse of ``datasets.Features._from_yaml_list``)."""
    kind = feature.get("_type")
    if kind is None:  # a struct
        return {"struct": [{"name": name, **_yaml(sub)} for name, sub in feature.items()]}
    if kind == "Value":
        return {"dtype": feature["dtype"]}
    if kind == "ClassLabel":
        return {"dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(feature["names"])}}}}
    if kind in ("List", "LargeList"):
        inner = _yaml(feature["feature"])
        if list(inner) == ["dtype"]:  # `list: float32`, `list: {class_label: ...}`
            inner_value: Any = inner["dtype"]
        elif list(inner) == ["struct"]:  # `list: [{name: ..., dtype: ...}, ...]`
            inner_value = inner["struct"]
        else:
            inner_value = inner
        out = {"list" if kind == "List" else "large_list": inner_value}
        if feature.get("length", -1) != -1:
            out["length"] = feature["length"]
        return out
    if kind in ("Image", "Audio", "Video", "Pdf", "Json"):
        return {"dtype": kind.lower()}
    raise CxrdataError(f"no card form for feature type {kind!r}")


def features_yaml(features: dict[str, Any]) -> list[dict[str, Any]]:
    """Features (``Features.to_dict()`` form) as the dataset card's ``dataset_info.features`` list."""
    return [{"name": name, **_yaml(feature)} for name, feature in features.items()]
