"""Output schemas: one versioned JSON file per table under ``schemas/``.

A schema file lists the columns in order, each with its Hugging Face ``datasets`` feature (in
``Features.to_dict()`` form) and a one-line doc. From it we derive the Arrow schema the writer
enforces, and the ``huggingface`` schema metadata that makes ``datasets`` load the shards typed
(an ``Image`` column, nested float boxes) without ``datasets`` being needed at write time.

A column may name a closed vocabulary (``"class_label"``, see ``schemas/class_labels.yaml`` and
:mod:`cxrdata.io.class_labels`): the shards keep the string, the dataset card declares a ``ClassLabel``.
A schema lists the Hugging Face ``task_categories`` its table serves (the card's YAML carries them).

A schema may extend another (``"extends": "<name>"``): its columns are the base's columns followed by
its own; its name, version, description and task categories are its own (task categories: the base's
when it lists none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa

from cxrdata.errors import CxrdataError

_VALUE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "binary": pa.binary(),
    "timestamp[ms]": pa.timestamp("ms"),
}


def feature_to_arrow(feature: dict[str, Any]) -> pa.DataType:
    """Arrow type of a Hugging Face feature given in ``Features.to_dict()`` form."""
    kind = feature.get("_type")
    if kind is None:  # a plain dict of sub-features is a struct
        return pa.struct([pa.field(name, feature_to_arrow(sub)) for name, sub in feature.items()])
    if kind == "Value":
        try:
            return _VALUE_TYPES[feature["dtype"]]
        except KeyError:
            raise ValueError(f"unsupported Value dtype {feature['dtype']!r}") from None
    if kind == "Image":
        return pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
    if kind in ("List", "Sequence", "LargeList"):
        item = feature_to_arrow(feature["feature"])
        length = feature.get("length", -1)
        return pa.list_(item, length) if length and length > 0 else pa.list_(item)
    raise ValueError(f"unsupported feature type {kind!r}")


ClassLabelSpec = str | dict[str, "ClassLabelSpec"]  # a vocabulary name, or struct field -> spec


@dataclass(frozen=True)
class Column:
    name: str
    feature: dict[str, Any]
    doc: str
    class_label: ClassLabelSpec | None = None  # where the column's strings come from a closed vocabulary


@dataclass(frozen=True)
class TableSchema:
    """A versioned output table: its columns, Arrow schema and Hugging Face features."""

    name: str
    version: int
    description: str
    columns: tuple[Column, ...]
    task_categories: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> dict[str, Any]:
        return {c.name: c.feature for c in self.columns}

    @property
    def arrow(self) -> pa.Schema:
        """Arrow schema carrying the features in its ``huggingface`` metadata."""
        fields = [pa.field(c.name, feature_to_arrow(c.feature)) for c in self.columns]
        metadata = {
            "huggingface": json.dumps({"info": {"features": self.features}}),
            "cxrdata": json.dumps({"schema": self.name, "version": self.version}),
        }
        return pa.schema(fields, metadata=metadata)


def _schema_dir() -> Path:
    """``schemas/`` (it ships inside the package as ``cxrdata.schemas``, a link to the top-level folder)."""
    return Path(str(resources.files("cxrdata.schemas")))


def available() -> list[str]:
    """Names of all schema files."""
    return sorted(p.stem for p in _schema_dir().glob("*.json"))


@cache
def load_schema(name: str) -> TableSchema:
    """Load ``schemas/<name>.json``."""
    path = _schema_dir() / f"{name}.json"
    if not path.is_file():
        raise CxrdataError(f"no output schema named {name!r} (expected {path})")
    raw = json.loads(path.read_text())
    columns = tuple(Column(c["name"], c["feature"], c.get("doc", ""), c.get("class_label")) for c in raw["columns"])
    tasks = tuple(raw.get("task_categories", ()))
    if base := raw.get("extends"):
        if base == name:
            raise CxrdataError(f"schema {name!r} extends itself")
        inherited = load_schema(base).columns
        clash = sorted({c.name for c in inherited} & {c.name for c in columns})
        if clash:
            raise CxrdataError(f"schema {name!r} repeats column(s) {', '.join(clash)} of its base {base!r}")
        columns = inherited + columns
        tasks = tasks or load_schema(base).task_categories
    return TableSchema(raw["name"], int(raw["version"]), raw.get("description", ""), columns, tasks)


PATH_FEATURE = {"dtype": "string", "_type": "Value"}


def image_columns_as_paths(schema: TableSchema) -> TableSchema:
    """The schema with every ``Image`` column retyped as a plain string path (``--image-format path`` of a
    DICOM or 16-bit PNG source, which no ``datasets`` image decoder shows correctly)."""
    columns = tuple(
        replace(c, feature=PATH_FEATURE, doc=f"{c.doc} Here: the absolute path of the source file (built with "
                                             "--image-format path; DICOM and 16-bit PNG are not opened by datasets).")
        if c.feature.get("_type") == "Image" else c
        for c in schema.columns
    )
    return replace(schema, columns=columns)
