"""Closed-vocabulary columns: their names (``schemas/class_labels.yaml``), their ``ClassLabel`` features, and
the write-time check that keeps every value inside its vocabulary.

The shards keep such a column as strings (polars, pyarrow and cxrdata's own trainers read names); the dataset
card declares it ``ClassLabel(names=...)``, so ``datasets`` gives integer ids. ``datasets`` turns a string into
an id leniently (it strips whitespace and reads a digit string as an id), so the check here is exact: a value
that is not one of the names, character for character, rejects its record before it is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from cxrdata import vocabulary
from cxrdata.errors import CxrdataError
from cxrdata.io.schema import ClassLabelSpec, TableSchema, _schema_dir
from cxrdata.stage import Record, Reject, Stage
from cxrdata.yamlfiles import load_yaml

GROUND_VOCABULARIES = {"pathologies": vocabulary.pathologies, "locations": vocabulary.locations}
REASON = "not_in_vocabulary"


@cache
def _entries() -> dict[str, dict[str, Any]]:
    return load_yaml((_schema_dir() / "class_labels.yaml").read_text())


@cache
def class_names(name: str) -> tuple[str, ...]:
    """The names of vocabulary ``name``, in id order."""
    entry = _entries().get(name)
    if entry is None:
        raise CxrdataError(f"no class-label vocabulary named {name!r} in schemas/class_labels.yaml")
    if "vocabulary" in entry:
        return tuple(GROUND_VOCABULARIES[entry["vocabulary"]]())
    names = (*(class_names(entry["extends"]) if "extends" in entry else ()), *entry["names"])
    if len(set(names)) != len(names):
        raise CxrdataError(f"class-label vocabulary {name!r} repeats a name")
    return names


def vocabulary_doc(name: str) -> str:
    return str(_entries()[name].get("doc", ""))


def _relabel(feature: dict[str, Any], spec: ClassLabelSpec, where: str) -> dict[str, Any]:
    """``feature`` with the string leaf that ``spec`` names (through lists, into struct fields) made a ClassLabel."""
    kind = feature.get("_type")
    if kind in ("List", "Sequence", "LargeList"):
        return {**feature, "feature": _relabel(feature["feature"], spec, where)}
    if isinstance(spec, str):
        if kind != "Value" or feature.get("dtype") != "string":
            raise CxrdataError(f"{where}: class label {spec!r} on a non-string feature {feature}")
        return {"names": list(class_names(spec)), "_type": "ClassLabel"}
    if kind is not None:
        raise CxrdataError(f"{where}: class labels {spec} need a struct, not {feature}")
    unknown = sorted(set(spec) - set(feature))
    if unknown:
        raise CxrdataError(f"{where}: class labels name unknown field(s) {', '.join(unknown)}")
    return {k: _relabel(sub, spec[k], f"{where}.{k}") if k in spec else sub for k, sub in feature.items()}


def with_class_labels(features: dict[str, Any], schema: TableSchema) -> dict[str, Any]:
    """``features`` (``Features.to_dict()`` form, e.g. what a shard holds) with the schema's closed-vocabulary
    columns declared ``ClassLabel``; columns the features lack are left alone."""
    out = copy.deepcopy(features)
    for column in schema.columns:
        if column.class_label is not None and column.name in out:
            out[column.name] = _relabel(out[column.name], column.class_label, f"{schema.name}.{column.name}")
    return out


def labelled_vocabularies(schema: TableSchema) -> list[tuple[str, str]]:
    """(column path, vocabulary name) of every closed-vocabulary leaf, in column order."""
    found: list[tuple[str, str]] = []

    def walk(spec: ClassLabelSpec, path: str) -> None:
        if isinstance(spec, str):
            found.append((path, spec))
        else:
            for key, sub in spec.items():
                walk(sub, f"{path}.{key}")

    for column in schema.columns:
        if column.class_label is not None:
            walk(column.class_label, column.name)
    return found


def _outside(value: Any, spec: ClassLabelSpec, path: str) -> str | None:
    """Where a value leaves its vocabulary (a detail), or None. Nulls are allowed: ClassLabel keeps them null."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if found := _outside(item, spec, f"{path}[{i}]"):
                return found
        return None
    if isinstance(spec, str):
        names = class_names(spec)
        if isinstance(value, str) and value in _name_set(spec):
            return None
        return f"{path} {value!r} is not one of the {len(names)} names of vocabulary {spec} (schemas/class_labels.yaml)"
    if not isinstance(value, dict):
        return f"{path} {value!r} is not a struct"
    for key, sub in spec.items():
        if found := _outside(value.get(key), sub, f"{path}.{key}"):
            return found
    return None


@cache
def _name_set(name: str) -> frozenset[str]:
    return frozenset(class_names(name))


def outside_vocabulary(record: Record, schema: TableSchema) -> str | None:
    """The first value of ``record`` outside its column's vocabulary, described; None when all are inside."""
    for column in schema.columns:
        if column.class_label is not None and (found := _outside(record.get(column.name), column.class_label,
                                                                 column.name)):
            return found
    return None


@dataclass
class ClassLabelCheck(Stage):
    """Rejects a record holding a value outside a closed vocabulary (run by the writer on every kept record)."""

    name: ClassVar[str] = "class-labels"
    schema: TableSchema | None = None

    def run(self, batch: list[Record]) -> list[Record | Reject]:
        if self.schema is None or not any(c.class_label for c in self.schema.columns):
            return list(batch)
        out: list[Record | Reject] = []
        for record in batch:
            detail = outside_vocabulary(record, self.schema)
            out.append(record if detail is None else self.reject(record, REASON, detail))
        return out
