"""Time of joining MIMIC-CXR-JPG's three tables at the full release's size (377,110 images).

    python benchmarks/mimic_tables_throughput.py [--images 377110] [--duplicates 100]

Synthetic tables with the real columns (two images per study, PA + LATERAL); ``--duplicates`` repeats
that many metadata, split and CheXpert rows exactly, so the duplicate handling is on its slow path too.
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from cxrdata.sources.mimic import FRONTAL_VIEWS, chexpert_labels
from cxrdata.sources.mimic_tables import join_tables


def tables(images: int, duplicates: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    ids = [f"{k:08x}-{k:08x}-00000000-00000000-4e384014" for k in range(images)]
    subjects = [str(10_000_000 + k // 6) for k in range(images)]
    studies = [str(50_000_000 + k // 2) for k in range(images)]
    constant = {"Rows": "3056", "Columns": "2544", "StudyDate": "21800506", "StudyTime": "80556.875",
                "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                "PatientOrientationCodeSequence_CodeMeaning": "Erect"}
    metadata = pl.DataFrame({"dicom_id": ids, "subject_id": subjects, "study_id": studies,
                             "ViewPosition": [("PA", "LATERAL")[k % 2] for k in range(images)],
                             **{name: [value] * images for name, value in constant.items()}})
    split = pl.DataFrame({"dicom_id": ids, "study_id": studies, "subject_id": subjects, "split": ["train"] * images})
    labels = (metadata.select("subject_id", "study_id").unique(maintain_order=True)
              .with_columns([pl.lit("1.0").alias(c) for c in chexpert_labels()]))
    return tuple(pl.concat([t, t.head(duplicates)]) for t in (metadata, split, labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=377_110)
    parser.add_argument("--duplicates", type=int, default=100)
    args = parser.parse_args()
    metadata, split, labels = tables(args.images, args.duplicates)
    start = time.perf_counter()
    joined = join_tables(lambda: metadata, lambda: split, lambda: labels, chexpert_labels(), FRONTAL_VIEWS)
    seconds = time.perf_counter() - start
    print(f"{metadata.height:,} metadata rows -> {joined.frame.height:,} records in {seconds:.1f} s; "
          f"excluded {joined.excluded}")


if __name__ == "__main__":
    main()
