"""Defects of the three MIMIC-CXR-JPG tables, for the fault tests (``write_mimic_sample(table_defects=True)``).

Each defect sits on its own study (frontal images only, so a default build reads them all):

=====================  ============================================================================
``metadata_identical``  an image's metadata row written twice, byte for byte
``metadata_conflict``   an image's metadata row written again with another ``Rows``
``split_identical``     an image's split row written twice
``split_conflict``      an image's split row written again with another split
``chexpert_identical``  a study's CheXpert row written twice
``chexpert_conflict``   a study's CheXpert row written again with another value in one label
``chexpert_invalid``    a study whose ``Pneumonia`` cell is ``yes``
``chexpert_missing``    a study without a CheXpert row
``path_escape``         metadata rows whose dicom_id would name a path outside the root
=====================  ============================================================================

The rows are tuples in the tables' column order (``mimic.yaml``); they are changed in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ESCAPING_IDS = ("../../../../etc/passwd", "/tmp/outside-the-root")
FRONTAL = ("PA", "AP")
IMAGE_DEFECTS = ("metadata_identical", "metadata_conflict", "split_identical", "split_conflict")
STUDY_DEFECTS = ("chexpert_identical", "chexpert_conflict", "chexpert_invalid", "chexpert_missing")


def _after(rows: list[tuple], match: int, row: tuple) -> None:
    """Insert ``row`` right after the first row whose ``match`` cell equals the row's."""
    k = next(i for i, r in enumerate(rows) if r[match] == row[match])
    rows.insert(k + 1, row)


def add_table_defects(rng: np.random.Generator, metadata: list[tuple], split: list[tuple], labels: list[tuple],
                      label_names: Sequence[str], avoid: set[str]) -> dict[str, str]:
    """Put each defect on its own study; defect -> dicom_id (image defects) or study_id (study defects)."""
    images = {}  # study_id -> its first frontal image's metadata row, over images not in ``avoid``
    for row in metadata:
        if row[4] in FRONTAL and row[0] not in avoid and row[2] in {r[1] for r in labels}:
            images.setdefault(row[2], row)
    studies = [images[s] for s in rng.permutation(sorted(images))]
    if len(studies) < len(IMAGE_DEFECTS) + len(STUDY_DEFECTS):
        raise ValueError("the sample is too small for its table defects; use more subjects")
    placed: dict[str, str] = {}
    for defect, row in zip(IMAGE_DEFECTS, studies, strict=False):
        dicom_id = row[0]
        placed[defect] = dicom_id
        if defect == "metadata_identical":
            _after(metadata, 0, row)
        elif defect == "metadata_conflict":
            _after(metadata, 0, (*row[:5], row[5] + 1, *row[6:]))
        else:
            own = next(r for r in split if r[0] == dicom_id)
            other = {"train": "test"}.get(own[3], "train")
            _after(split, 0, own if defect == "split_identical" else (*own[:3], other))
    pneumonia = 2 + list(label_names).index("Pneumonia")
    for defect, row in zip(STUDY_DEFECTS, studies[len(IMAGE_DEFECTS):], strict=False):
        study = row[2]
        placed[defect] = str(study)
        k = next(i for i, r in enumerate(labels) if r[1] == study)
        own = labels[k]
        if defect == "chexpert_identical":
            labels.insert(k + 1, own)
        elif defect == "chexpert_conflict":
            labels.insert(k + 1, (*own[:pneumonia], "1.0" if own[pneumonia] != "1.0" else "0.0", *own[pneumonia + 1:]))
        elif defect == "chexpert_invalid":
            labels[k] = (*own[:pneumonia], "yes", *own[pneumonia + 1:])
        else:
            del labels[k]
    host = studies[0]
    for dicom_id in ESCAPING_IDS:
        metadata.append((dicom_id, *host[1:]))
    placed["path_escape"] = ",".join(ESCAPING_IDS)
    return placed
