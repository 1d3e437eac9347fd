"""The dataset registry: one entry per dataset names its options, sources, doctor, sample writer and help.

The command line's ``build``, ``doctor`` and ``sample-data`` commands are generated from it, so adding a
dataset is its own module (reader, options, doctor, sample writer, schema) plus one line in
:data:`ENTRIES`. Doctors and sample writers are named by ``"module:function"`` and imported only when
used, so this module imports no sample code and a build imports no doctor.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.sources import chestxray14, imagenome, mimic, ms_cxr, padchest_gr, vindr
from cxrdata.sources.base import DatasetEntry

ENTRIES: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (mimic.ENTRY, ms_cxr.ENTRY, imagenome.ENTRY, vindr.ENTRY, padchest_gr.ENTRY, chestxray14.ENTRY)
}


def entry(name: str) -> DatasetEntry:
    if name not in ENTRIES:
        raise CxrdataError(f"unknown dataset {name!r}; available: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def resolve(reference: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` reference names."""
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


def bundled_root(name: str, seed: int = 0) -> Path:
    """The root of the bundled sample of dataset or sample tree ``name``, generated on first use."""
    from cxrdata.sample.bundled import generated

    names = {e.tree: e.sample for e in ENTRIES.values() if not e.sample_tree}
    if name not in names:
        raise CxrdataError(f"no bundled sample for {name!r}; available: {', '.join(sorted(names))}")
    return generated(name, resolve(names[name]), seed)


def sample_paths(dataset: DatasetEntry, seed: int = 0) -> dict[str, Path]:
    """The path options of a dataset's bundled sample (``--sample``)."""
    root = bundled_root(dataset.tree, seed)
    return {option: root / relative if relative else root for option, relative in dataset.sample_paths.items()}
