"""A MIMIC-CXR-JPG-shaped tree of any size, for the scale and throughput benchmarks.

The three CSVs have the real columns and the release's proportions (377,110 images of 227,827 studies of
65,379 patients in MIMIC-CXR-JPG 2.0.0; splits by patient, about 97.8 / 0.8 / 1.4 % train / validate /
test; about 39 % AP, 26 % PA, 22 % LATERAL, 9 % LL, 4 % empty ViewPosition), generated column-wise.
Images and reports are hard links to a small pool written by ``cxrdata``'s own sample writer (full-size
images, the sample's small ones, or tiny ones: :data:`IMAGES`): every record is still read and decoded on
its own, only the page cache is shared. ``Rows``/``Columns`` are those of the image each row links to.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from cxrdata.sample.mimic import write_mimic_sample
from cxrdata.sources.mimic import chexpert_labels, study_folder

REAL = {"images": 377_110, "studies": 227_827, "subjects": 65_379}
VIEWS = {"AP": 0.39, "PA": 0.255, "LATERAL": 0.22, "LL": 0.093, None: 0.042}
SPLITS = {"train": 0.978, "validate": 0.008, "test": 0.014}
LABEL_VALUES = {"1.0": 0.07, "0.0": 0.05, "-1.0": 0.03, None: 0.85}


@dataclass(frozen=True)
class Tree:
    root: Path
    images: int
    studies: int
    subjects: int
    frontal: int


IMAGES = ("full", "small", "tiny")  # full resolution (2-3k px), the sample's 320-640 px, or 64 px


def pool(work: Path, images: str, seed: int = 0) -> tuple[list[Path], list[tuple[int, int]], list[Path]]:
    """Images (with their (width, height)) and reports to link to, from one rendered sample."""
    base = work / f"pool-{images}-{seed}"
    if not (base / "done").exists():
        shutil.rmtree(base, ignore_errors=True)
        write_mimic_sample(base, subjects=8, seed=seed, full_size_images=24 if images == "full" else 0,
                           defects=False)
        if images == "tiny":
            for path in (base / "files").rglob("*.jpg"):
                pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                scale = 64 / max(pixels.shape)
                small = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(path), small, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (base / "done").touch()
    files = sorted((base / "files").rglob("*.jpg"))
    if images == "full":  # only the full-resolution ones
        files = [p for p in files if max(_size(p)) >= 2000]
    reports = sorted((base / "files").rglob("s*.txt"))
    return files, [_size(p) for p in files], reports


def _size(path: Path) -> tuple[int, int]:
    height, width = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).shape
    return width, height


def _spread(rng: np.random.Generator, items: int, groups: int) -> np.ndarray:
    """The group of each item: every group gets at least one, the rest fall at random; sorted."""
    extra = rng.integers(0, groups, items - groups)
    return np.sort(np.concatenate([np.arange(groups), extra]))


def _choice(rng: np.random.Generator, shares: dict, n: int) -> list:
    keys = list(shares)
    p = np.array(list(shares.values()), dtype=float)
    return [keys[i] for i in rng.choice(len(keys), n, p=p / p.sum())]


def tables(images: int, sizes: list[tuple[int, int]], seed: int = 0) -> tuple[pl.DataFrame, ...]:
    """(metadata, split, chexpert) for ``images`` rows, in MIMIC's proportions."""
    rng = np.random.default_rng(seed)
    studies = max(1, round(images * REAL["studies"] / REAL["images"]))
    subjects = max(1, round(images * REAL["subjects"] / REAL["images"]))
    study_of_image = _spread(rng, images, studies)
    subject_of_study = _spread(rng, studies, subjects)
    subject_ids = 10_000_000 + np.arange(subjects) * (9_999_999 // subjects)
    study_ids = 50_000_000 + np.arange(studies) * (49_999_999 // studies)
    raw = rng.bytes(20 * images).hex()
    dicom_ids = ["-".join(raw[i * 40 + 8 * g: i * 40 + 8 * g + 8] for g in range(5)) for i in range(images)]
    pick = rng.integers(0, len(sizes), images)
    subject_split = np.array(_choice(rng, SPLITS, subjects))
    meta = pl.DataFrame({
        "dicom_id": dicom_ids,
        "subject_id": subject_ids[subject_of_study[study_of_image]].astype(str),
        "study_id": study_ids[study_of_image].astype(str),
        "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
        "ViewPosition": pl.Series(_choice(rng, VIEWS, images), dtype=pl.String),
        "Rows": [str(sizes[i][1]) for i in pick], "Columns": [str(sizes[i][0]) for i in pick],
        "StudyDate": (21000101 + rng.integers(0, 28, images)).astype(str),
        "StudyTime": [f"{t:.3f}" for t in rng.uniform(0, 235959, images)],
        "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
        "ViewCodeSequence_CodeMeaning": "postero-anterior",
        "PatientOrientationCodeSequence_CodeMeaning": "Erect",
    }).with_columns(pl.Series("_pool", pick))
    split = meta.select("dicom_id", "study_id", "subject_id",
                        pl.Series("split", subject_split[subject_of_study[study_of_image]]))
    labels = {name: pl.Series(_choice(rng, LABEL_VALUES, studies), dtype=pl.String) for name in chexpert_labels()}
    chexpert = pl.DataFrame({"subject_id": subject_ids[subject_of_study].astype(str),
                             "study_id": study_ids.astype(str), **labels})
    return meta, split, chexpert


def write_tree(work: Path, rows: int, images: str = "tiny", seed: int = 0) -> Tree:
    """The tree of ``rows`` images under ``work`` (kept between runs: written once per size)."""
    root = work / f"mimic-{rows}-{images}-{seed}"
    pool_images, sizes, reports = pool(work, images, seed)
    meta, split, chexpert = tables(rows, sizes, seed)
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        (root / "files").mkdir(parents=True)
        for frame, name in ((meta.drop("_pool"), "metadata"), (split, "split"), (chexpert, "chexpert")):
            with gzip.open(root / f"mimic-cxr-2.0.0-{name}.csv.gz", "wb", compresslevel=1) as fh:
                frame.write_csv(fh)
        for i, (subject, study, dicom, k) in enumerate(meta.select("subject_id", "study_id", "dicom_id", "_pool")
                                                       .iter_rows()):
            folder = root / study_folder(int(subject), int(study))
            if not folder.is_dir():
                folder.mkdir(parents=True)
                os.link(reports[i % len(reports)], folder.with_suffix(".txt"))
            os.link(pool_images[k], folder / f"{dicom}.jpg")
        (root / "done").touch()
    frontal = meta.filter(pl.col("ViewPosition").is_in(["PA", "AP"])).height
    return Tree(root, rows, chexpert.height, meta["subject_id"].n_unique(), frontal)
