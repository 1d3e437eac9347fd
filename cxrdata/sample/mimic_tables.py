"""The tables of the synthetic MIMIC-CXR-JPG sample: the gzip CSVs (metadata, split, CheXpert, NegBio), the
2.1.0 test-set labels, IMAGE_FILENAMES, README and LICENSE (columns and texts from ``mimic.yaml``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cxrdata.sample import tables
from cxrdata.sample.mimic_defects import Defects
from cxrdata.sample.mimic_plan import Study, config
from cxrdata.sample.mimic_table_defects import add_table_defects

METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv.gz"
NEGBIO = "mimic-cxr-2.0.0-negbio.csv.gz"
TEST_LABELS = "mimic-cxr-2.1.0-test-set-labeled.csv"


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def write_tables(root: Path, studies: list[Study], found: Defects,
                  defects: np.random.Generator | None) -> tuple[list[Path], dict[str, str]]:
    """Metadata, split, CheXpert, NegBio, 2.1.0 test labels, IMAGE_FILENAMES, README, LICENSE, and the
    table defects placed (when ``defects`` is a random stream: :mod:`mimic_table_defects`)."""
    cfg = config()
    by_study = sorted(studies, key=lambda s: (s.subject_id, s.study_id))
    images = [(s, im) for s in by_study for im in sorted(s.images, key=lambda im: im.dicom_id)]
    view = cfg["view_meanings"]
    metadata = [
        (im.dicom_id, s.subject_id, s.study_id, s.exam["name"], im.view, im.height, im.width, s.date,
         repr(s.time), s.exam["name"], view[im.view], s.orientation)
        for s, im in images
    ]
    split = [(im.dicom_id, s.study_id, s.subject_id, s.split)
             for s, im in images if im.dicom_id != found.missing_split]
    labels = [(s.subject_id, s.study_id, *(_label(s.labels.get(n)) for n in cfg["labels"])) for s in by_study]
    test = sorted(row[1:] for row, s in zip(labels, by_study, strict=True) if s.split == "test")
    renamed = cfg["test_set_renames"]
    names = ("IMAGE_FILENAMES", "README", "LICENSE.txt")
    texts = ("".join(f"{s.folder}/{im.dicom_id}.jpg\n" for s, im in images), cfg["readme"], cfg["license"])
    negbio = list(labels)
    placed = {}
    if defects is not None:
        avoid = {d for d in (found.truncated, found.corrupt, found.missing_split) if d}
        avoid |= {im.dicom_id for s in studies if s.study_id == found.missing_report for im in s.images}
        placed = add_table_defects(defects, metadata, split, labels, cfg["labels"], avoid)
    return [
        tables.write_csv(root / METADATA, cfg["metadata_columns"], metadata),
        tables.write_csv(root / SPLIT, cfg["split_columns"], split),
        tables.write_csv(root / CHEXPERT, ["subject_id", "study_id", *cfg["labels"]], labels),
        tables.write_csv(root / NEGBIO, ["subject_id", "study_id", *cfg["labels"]], negbio),
        tables.write_csv(root / TEST_LABELS, ["study_id", *(renamed.get(n, n) for n in cfg["labels"])], test),
        *(tables.write(root / name, text.encode()) for name, text in zip(names, texts, strict=True)),
    ], placed
