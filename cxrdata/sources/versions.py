"""Which release of each source dataset a build read, as far as the files on disk tell.

Evidence, strongest first: a file only one release ships (MIMIC-CXR-JPG 2.1.0's
``mimic-cxr-2.1.0-test-set-labeled.csv`` / ``IMAGE_FILENAMES``), a version in a file name (MS-CXR's
``MS_CXR_Local_Alignment_v1.1.0.csv``, PadChest-GR's ``grounded_reports_20240819.json`` date stamp), then
a PhysioNet-style folder name (``.../vindr-cxr/1.0.0/``, ``chest-imagenome-dataset-1.0.0``). A dataset
whose version nothing reveals is left out rather than guessed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

VERSION_DIR = re.compile(r"^(?:.*-)?v?(\d+\.\d+(?:\.\d+)?)$")
MIMIC_2_1_ONLY = ("mimic-cxr-2.1.0-test-set-labeled.csv", "IMAGE_FILENAMES")
MS_CXR_CSV = re.compile(r"MS_CXR_Local_Alignment_v(\d+\.\d+\.\d+)\.csv$")
PADCHEST_REPORTS = re.compile(r"grounded_reports_(\d{8})\.json$")


def _folder_version(path: Path) -> tuple[str, str] | None:
    """A version from the folder's name, ``1.0.0`` or ``name-1.0.0`` (a file: its folder's); never from higher up."""
    folder = path.parent if path.is_file() else path
    match = VERSION_DIR.match(folder.name)
    return (match.group(1), f"folder name {folder.name}") if match else None


def _entry(found: tuple[str, str] | None) -> dict[str, str] | None:
    return {"version": found[0], "evidence": found[1]} if found else None


def mimic_version(root: Path) -> dict[str, str] | None:
    """MIMIC-CXR-JPG: 2.1.0 when a 2.1.0-only file is there, else the folder name, else 2.0.0 if it has metadata."""
    for name in MIMIC_2_1_ONLY:
        if (root / name).is_file():
            return _entry(("2.1.0", f"{name} present (2.1.0 only)"))
    if found := _folder_version(root):
        return _entry(found)
    from cxrdata.sources.mimic import METADATA

    if any((root / name).is_file() for name in METADATA):
        return _entry(("2.0.0", "2.0.0 metadata without the files 2.1.0 adds"))
    return None


def ms_cxr_version(root: Path, options: dict[str, Any]) -> dict[str, str] | None:
    """MS-CXR: the CSV's version (header and name); the PhysioNet project version when the folder says it."""
    csv = options.get("csv") or ""
    version = options.get("ms_cxr_version") or (m.group(1) if (m := MS_CXR_CSV.search(csv)) else None)
    if version is None:
        return None
    evidence = f"{csv or 'CSV'} header"
    if (folder := _folder_version(root)) and folder[0] != version:
        evidence += f"; PhysioNet project {folder[0]} ({folder[1]})"
    return _entry((version, evidence))


def padchest_version(root: Path, options: dict[str, Any]) -> dict[str, str] | None:
    name = options.get("reports") or next((p.name for p in sorted(root.glob("grounded_reports_*.json"))), "")
    match = PADCHEST_REPORTS.search(name)
    return _entry((match.group(1), f"{name} date stamp")) if match else None


def dataset_versions(dataset: str, root: Path, options: dict[str, Any],
                     mimic_root: Path | None = None) -> dict[str, dict[str, str]]:
    """``{dataset: {version, evidence}}`` for the dataset a config reads and the MIMIC-CXR-JPG images under it."""
    root = Path(root)
    found: dict[str, dict[str, str] | None] = {}
    if dataset == "mimic-cxr-jpg":
        found[dataset] = mimic_version(root)
    elif dataset == "ms-cxr":
        found[dataset] = ms_cxr_version(root, options)
    elif dataset == "padchest-gr":
        found[dataset] = padchest_version(root, options)
    else:
        found[dataset] = _entry(_folder_version(root))
    if mimic_root is not None and dataset != "mimic-cxr-jpg":
        found["mimic-cxr-jpg"] = mimic_version(Path(mimic_root))
    return {name: entry for name, entry in found.items() if entry}


def source_versions(source: Any) -> dict[str, dict[str, str]]:
    """:func:`dataset_versions` of a pipeline source (its dataset, root, describe() and mimic_root)."""
    return dataset_versions(source.dataset, source.root, source.describe(), getattr(source, "mimic_root", None))


def folder_version(root: Path) -> dict[str, str] | None:
    """A version from the download folder's name (``.../vindr-cxr/1.0.0/``, ``chest-imagenome-dataset-1.0.0``)."""
    return _entry(_folder_version(Path(root)))
