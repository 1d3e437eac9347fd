"""The dataset registry: one entry per dataset names its options, sources, doctor, sample writer and help.

The command line's ``build``, ``doctor`` and ``sample-data`` commands are generated from it, so adding a
dataset is its own module (reader, options, doctor, sample writer, schema) plus one line in
:data:`ENTRIES`. Doctors and sample writers are named by ``"module:function"`` and imported only when
used, so this module imports no sample code and a build imports no doctor (the bundled sample trees are
:func:`cxrdata.api.bundled_root`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
