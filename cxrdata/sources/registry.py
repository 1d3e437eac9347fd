"""The dataset registry: one entry per dataset names its options, sources, doctor, sample writer and help.

The command line's ``build``, ``doctor`` and ``sample-data`` commands are generated from it, so adding a
dataset is its own module (reader, options, doctor, sample writer, schema) plus one line in
:data:`ENTRIES`. Doctors and sample writers are named by ``"module:function"`` and imported only when
used, so this module imports no sample code and a build imports no doctor (the bundled sample trees are
:func:`cxrdata.api.bundled_root`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any

from cxrdata.errors import CxrdataError
from cxrdata.sources.base import DatasetEntry

# dataset name -> the module whose ENTRY it is; a module is imported only when its dataset is used, so that
# `build mimic` never imports pydicom (VinDr-CXR's reader) and the build driver stays small.
MODULES = {
    "mimic": "cxrdata.sources.mimic",
    "ms-cxr": "cxrdata.sources.ms_cxr",
    "imagenome": "cxrdata.sources.imagenome",
    "vindr": "cxrdata.sources.vindr",
    "padchest-gr": "cxrdata.sources.padchest_gr",
    "chestxray14": "cxrdata.sources.chestxray14",
}


@cache
def _load(name: str) -> DatasetEntry:
    found = importlib.import_module(MODULES[name]).ENTRY
    if found.name != name:
        raise RuntimeError(f"{MODULES[name]}.ENTRY is named {found.name!r}, registered as {name!r}")
    return found


class _Entries(Mapping[str, DatasetEntry]):
    """Every registered dataset by name, each entry loaded on first use."""

    def __getitem__(self, name: str) -> DatasetEntry:
        if name not in MODULES:
            raise KeyError(name)
        return _load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODULES)

    def __len__(self) -> int:
        return len(MODULES)


ENTRIES: Mapping[str, DatasetEntry] = _Entries()


def entry(name: str) -> DatasetEntry:
    if name not in ENTRIES:
        raise CxrdataError(f"unknown dataset {name!r}; available: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def resolve(reference: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` reference names."""
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)
