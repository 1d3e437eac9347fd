"""What the synthetic Chest ImaGenome sample is made of: the frontal MIMIC images it lists, ImaGenome's
own patient-level splits, each patient's study order, and the report sentences its gold attributes and
silver scene graphs share; plus the box variation and number format every file of it uses."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

SPLIT_CYCLE = ("train", "train", "valid", "test", "train")  # per patient, gold patients aside

# Report sentences with their regions and attribute strings; "left chest wall" has no box.
PHRASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Right lower lobe opacity\n is concerning for pneumonia.", ("right lower lung zone", "right lung"),
     ("anatomicalfinding|yes|lung opacity", "disease|yes|pneumonia", "nlp|yes|abnormal")),
    ("Small left pleural effusion\n is new.", ("left costophrenic angle", "left lung"),
     ("anatomicalfinding|yes|pleural effusion", "nlp|yes|abnormal")),
    ("The heart size is normal.", ("cardiac silhouette",),
     ("anatomicalfinding|no|enlarged cardiac silhouette", "nlp|yes|normal")),
    ("There is no pneumothorax.", ("right lung", "left lung"),
     ("anatomicalfinding|no|pneumothorax", "nlp|yes|normal")),
    ("Left chest wall pacemaker\n with leads in standard position.", ("left chest wall",),
     ("tubesandlines|yes|pacemaker", "nlp|yes|abnormal")),
    ("Mild bibasilar atelectasis.", ("left lower lung zone", "right lower lung zone"),
     ("anatomicalfinding|yes|atelectasis", "nlp|yes|abnormal")),
    ("Mediastinal contours are unremarkable.", ("mediastinum",),
     ("anatomicalfinding|no|mediastinal widening", "nlp|yes|normal")),
)


@dataclass(frozen=True)
class FrontalImage:
    """A frontal image of the MIMIC sample, with its original size and (after :func:`assign_splits`) split."""

    dicom_id: str
    subject_id: int
    study_id: int
    view: str
    width: int
    height: int
    study_datetime: str
    split: str = ""

    @property
    def path(self) -> str:
        s = str(self.subject_id)
        return f"files/p{s[:2]}/p{s}/s{self.study_id}/{self.dicom_id}.dcm"

    def split_row(self) -> list[str]:
        return [str(self.subject_id), str(self.study_id), self.dicom_id, self.path, self.view]


def frontal_images(mimic_root: Path) -> list[FrontalImage]:
    """PA/AP images of the MIMIC sample with their original size, sorted by (subject, study, dicom)."""
    found = sorted(mimic_root.rglob("mimic-cxr-2.0.0-metadata.csv.gz"))
    if not found:
        raise FileNotFoundError(f"no mimic-cxr-2.0.0-metadata.csv.gz under {mimic_root}")
    with gzip.open(found[0], "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    images = []
    for row in rows:
        if row["ViewPosition"] not in ("PA", "AP"):
            continue
        time = f"{int(float(row['StudyTime'])):06d}"
        date = row["StudyDate"]
        images.append(FrontalImage(
            dicom_id=row["dicom_id"], subject_id=int(row["subject_id"]), study_id=int(row["study_id"]),
            view=row["ViewPosition"], width=int(row["Columns"]), height=int(row["Rows"]),
            study_datetime=f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}:{time[4:]}",
        ))
    return sorted(images, key=lambda im: (im.subject_id, im.study_id, im.dicom_id))


def assign_splits(images: list[FrontalImage]) -> tuple[list[FrontalImage], set[int]]:
    """ImaGenome's own patient-level split; gold = the first train patient and the first test patient."""
    subjects = sorted({im.subject_id for im in images})
    split_of = {s: SPLIT_CYCLE[k % len(SPLIT_CYCLE)] for k, s in enumerate(subjects)}
    gold = {next(s for s in subjects if split_of[s] == name) for name in ("train", "test") if name in split_of.values()}
    out = [replace(im, split=split_of[im.subject_id]) for im in images]
    return out, gold


def order_studies(images: list[FrontalImage]) -> dict[int, tuple[int, int | None]]:
    """study_id -> (1-based order within the patient by date, the previous study's id)."""
    by_subject: dict[int, list[tuple[str, int]]] = {}
    for im in images:
        entry = (im.study_datetime, im.study_id)
        if entry not in by_subject.setdefault(im.subject_id, []):
            by_subject[im.subject_id].append(entry)
    order: dict[int, tuple[int, int | None]] = {}
    for studies in by_subject.values():
        studies.sort()
        for k, (_, study) in enumerate(studies):
            order[study] = (k + 1, studies[k - 1][1] if k else None)
    return order


def choose_sentences(rng: np.random.Generator) -> list[int]:
    """Two to four of :data:`PHRASES`, by index, in report order."""
    return sorted(int(i) for i in rng.choice(len(PHRASES), size=int(rng.integers(2, 5)), replace=False))


def wiggle(rng: np.random.Generator, box: tuple[float, ...]) -> tuple[float, ...]:
    """Per-image variation of an anatomy box: up to 3% of its size, kept inside the image."""
    x0, y0, x1, y1 = box
    d = rng.uniform(-1, 1, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0]) * 0.03
    return tuple(float(v) for v in np.clip(np.array(box) + d, 0.0, 1.0))


def csv_float(value: float) -> str:
    """float64 as pandas writes it (rounded to 10 decimals so that ``0.0`` is not ``-1.4e-14``)."""
    return repr(round(float(value), 10) + 0.0)
